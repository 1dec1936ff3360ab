#!/usr/bin/env bash
# How docs/results/imdb/ was produced: a CPU-sized IMDb study on the 2-core development machine
# (2 x 128 encoder and LSTM, 8k vocabulary, 800 pretraining steps of 32 x 128 tokens, budgets 100
# and 1 000, 3 seeds, every cell 80 steps of 16 reviews x 256 tokens, validation 500 reviews,
# test a fixed 1 000 of the 25 000). The LSTM-pretrained arm (LM pretraining on the same text and
# number of tokens) was added to the same study directory by a second run of this script.
# The GPU-sized study is recipes/imdb/study.yaml as it stands (see docs/results/imdb/run_on_gpu.sh).
set -euo pipefail
D=${IMDB_DIR:-../shared/data/imdb}
S=${STUDY_DIR:-outputs/imdb_cpu/study}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
SIZE="--vocab_size 8192 --hidden_size 128 --num_hidden_layers 2 --num_attention_heads 4 --intermediate_size 256"
.venv/bin/python scripts/study.py recipes/imdb/study.yaml --output_dir "$S" --budgets 100 1000 --seeds 0 1 2 \
  --arms transformer_pretrained transformer_scratch lstm_scratch lstm_pretrained \
    --stage_overrides="$SIZE --report_to none --disable_tqdm true --dataloader_num_workers 0" \
  --pretrain_overrides="--train_file $D/unsup.jsonl.gz $D/train.jsonl.gz --train_split train --test_file $D/test.jsonl.gz --max_seq_length 128 --per_device_train_batch_size 32 --max_steps 800 --eval_steps 400 --save_steps 200 --max_eval_samples 1000" \
  --finetune_overrides="--train_file $D/train.jsonl.gz --test_file $D/test.jsonl.gz --max_seq_length 256 --per_device_train_batch_size 16 --max_steps 80 --eval_steps 20 --max_eval_samples 1000 --validation_split_percentage 2"
