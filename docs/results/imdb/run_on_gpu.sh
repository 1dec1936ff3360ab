#!/usr/bin/env bash
# How docs/results/imdb/ was produced: the IMDb study on one GPU (bf16), offline, in one
# ~9-minute device session. From the repo root, with the IMDb copy in device_data/imdb and wheels
# for what the GPU image lacks (datasets, evaluate, dill, multiprocess) in .whl/.
# Cells run in order budget -> seed -> arm and are recorded as they finish; whatever the time
# limit cut off is simply absent from results.jsonl (the report lists exactly what ran).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
if ! python3 -c "import pyarrow as p, sys; sys.exit(int(p.__version__.split('.')[0]) < 24)"; then
  # datasets 5.x wants pyarrow >= 24; older images get datasets 4.4 and its pins.
  rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/evaluate*.whl .whl/alt/*.whl
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, datasets, accelerate, pyarrow; print(torch.__version__, transformers.__version__, datasets.__version__, accelerate.__version__, pyarrow.__version__, torch.cuda.get_device_name(0))"
D=device_data/imdb
S=${STUDY_DIR:-outputs/imdb/study}
STUDY=(python3 scripts/study.py recipes/imdb/study.yaml --output_dir "$S" --min_finetune_steps 150
  --stage_overrides="--mixed_precision bf16 --dataloader_num_workers 4 --report_to none --disable_tqdm true"
  --pretrain_overrides="--train_file $D/unsup.jsonl.gz $D/train.jsonl.gz --train_split train --test_file $D/test.jsonl.gz --max_steps ${PRETRAIN_STEPS:-2500} --eval_steps 500 --save_steps 0"
  --finetune_overrides="--train_file $D/train.jsonl.gz --test_file $D/test.jsonl.gz --num_train_epochs 2 --eval_steps 50")
timeout "${STUDY_SECONDS:-480}" "${STUDY[@]}"
echo "study exit: $?"
"${STUDY[@]}" --report_only true
