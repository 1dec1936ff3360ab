#!/usr/bin/env bash
# How docs/results/imdb/ was produced: a CPU-sized IMDb study on the 2-core development machine
# (2 x 128 encoder, 1 x 128 biLSTM, 8k vocabulary, 800 pretraining steps of 32 x 128 tokens, budgets 100
# and 1 000, 3 seeds, every cell 80 steps of 16 reviews x 256 tokens, validation 500 reviews,
# test a fixed 1 000 of the 25 000).
# The GPU-sized study is recipes/imdb/study.yaml as it stands (see docs/results/imdb/run_on_gpu.sh).
set -euo pipefail
D=${IMDB_DIR:-../shared/data/imdb}
S=${STUDY_DIR:-outputs/imdb_cpu/study}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# The transformer arms: a 2 x 128 encoder.
SIZE="--vocab_size 8192 --hidden_size 128 --num_hidden_layers 2 --num_attention_heads 4 --intermediate_size 256"
# The LSTM arms: a 1-layer 128-wide biLSTM (a bidirectional LSTM LM must have one layer; stacked,
# each direction would see the tokens it predicts). A second invocation on the same directory
# reuses the tokenizer, the MLM pretraining and the finished transformer cells.
LSTM_SIZE="--vocab_size 8192 --hidden_size 128 --num_hidden_layers 1"
PRETRAIN="--train_file $D/unsup.jsonl.gz $D/train.jsonl.gz --train_split train --test_file $D/test.jsonl.gz --max_seq_length 128 --per_device_train_batch_size 32 --max_steps 800 --eval_steps 400 --save_steps 200 --max_eval_samples 1000"
FINETUNE="--train_file $D/train.jsonl.gz --test_file $D/test.jsonl.gz --max_seq_length 256 --per_device_train_batch_size 16 --max_steps 80 --eval_steps 20 --max_eval_samples 1000 --validation_split_percentage 2"
COMMON="--report_to none --disable_tqdm true --dataloader_num_workers 0"
.venv/bin/python scripts/study.py recipes/imdb/study.yaml --output_dir "$S" --budgets 100 1000 --seeds 0 1 2 \
  --arms transformer_pretrained transformer_scratch \
  --stage_overrides="$SIZE $COMMON" --pretrain_overrides="$PRETRAIN" --finetune_overrides="$FINETUNE"
.venv/bin/python scripts/study.py recipes/imdb/study.yaml --output_dir "$S" --budgets 100 1000 --seeds 0 1 2 \
  --arms transformer_pretrained transformer_scratch lstm_scratch lstm_pretrained \
  --stage_overrides="$LSTM_SIZE $COMMON" --pretrain_overrides="$PRETRAIN" --finetune_overrides="$FINETUNE"
