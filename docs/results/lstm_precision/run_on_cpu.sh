#!/usr/bin/env bash
# Issue 8 §2: does the LSTM need its recurrence in fp32? Runs the LSTM arms (scratch and
# LM-pretrained) with the recurrence in fp32 and in bf16, all under CPU bf16 autocast, at T = 256
# and 512 on the local IMDb copy, then writes the report (LM loss curves, accuracy difference with
# paired 95% intervals, speed, gradient norms across time steps) and the speed of both recurrences
# in the sequence-length benchmark.
#
#   bash docs/results/lstm_precision/run_on_cpu.sh            # the real run (hours on 2 cores; not yet timed)
#   SMOKE=1 bash docs/results/lstm_precision/run_on_cpu.sh    # T=256, a few steps, one seed: checks the plumbing
#
# Knobs (environment): DATA (IMDb folder), OUT (outputs), LENGTHS, SEEDS, BUDGETS, LM_STEPS, FT_STEPS,
# FT_BATCH, EVAL (validation/test examples), TOKENS_PER_STEP (LM batch = TOKENS_PER_STEP / T, so both
# lengths see the same tokens). On a shared machine set OMP_NUM_THREADS=1 (see README.md).
# Re-running resumes: finished pretrainings and cells are skipped.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-${TUNEKIT_SHARED_DATA:-../shared/data}/imdb}
PYTHON=${PYTHON:-.venv/bin/python}
if [[ "${SMOKE:-0}" == 1 ]]; then
  OUT=${OUT:-outputs/lstm_precision_smoke}; LENGTHS=${LENGTHS:-256}; SEEDS=${SEEDS:-"0 1"}
  LM_STEPS=${LM_STEPS:-15}; FT_STEPS=${FT_STEPS:-8}; TOKENS_PER_STEP=${TOKENS_PER_STEP:-2048}
  BUDGETS=${BUDGETS:-"200"}; EVAL=${EVAL:-100}; FT_BATCH=${FT_BATCH:-8}; NOTE=" (SMOKE RUN: a few steps, not the finding)"
  SPEED_SIZES="--hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --intermediate_size 64"
  MODEL_SIZES="--hidden_size 32"; VOCAB="--vocab_size 1024"  # bf16 matmuls crawl on CPUs without AVX512-BF16/AMX
else
  OUT=${OUT:-outputs/lstm_precision}; LENGTHS=${LENGTHS:-"256 512"}; SEEDS=${SEEDS:-"0 1 2"}
  LM_STEPS=${LM_STEPS:-1000}; FT_STEPS=${FT_STEPS:-300}; TOKENS_PER_STEP=${TOKENS_PER_STEP:-8192}
  BUDGETS=${BUDGETS:-"1000 all"}; EVAL=${EVAL:-2000}; FT_BATCH=${FT_BATCH:-32}; NOTE=""; SPEED_SIZES=""
  MODEL_SIZES=""; VOCAB=""
fi
if [[ "${SMOKE:-0}" == 1 ]]; then  # a fixed random slice of IMDb, so the smoke takes minutes, not hours
  mkdir -p "$OUT/data"
  $PYTHON - "$DATA" "$OUT/data" <<'PY'
import gzip, random, sys
source, target = sys.argv[1:]
for name, count in (("unsup", 3000), ("train", 1000), ("test", 500)):
    lines = gzip.open(f"{source}/{name}.jsonl.gz", "rt").readlines()
    with gzip.open(f"{target}/{name}.jsonl.gz", "wt") as handle:
        handle.writelines(random.Random(0).sample(lines, count))
PY
  DATA="$OUT/data"
fi
PRETRAIN_DATA="--train_file $DATA/unsup.jsonl.gz $DATA/train.jsonl.gz --train_split train --test_file $DATA/test.jsonl.gz"
FINETUNE_DATA="--train_file $DATA/train.jsonl.gz --test_file $DATA/test.jsonl.gz"
dirs=()
for T in $LENGTHS; do
  $PYTHON scripts/study.py recipes/lstm_precision/study.yaml \
    --output_dir "$OUT/T$T" --seeds $SEEDS --budgets $BUDGETS \
    --stage_overrides="--max_seq_length $T --mixed_precision bf16" \
    --pretrain_overrides="$PRETRAIN_DATA $MODEL_SIZES $VOCAB --max_steps $LM_STEPS --per_device_train_batch_size $((TOKENS_PER_STEP / T))" \
    --finetune_overrides="$FINETUNE_DATA $MODEL_SIZES --max_steps $FT_STEPS --max_eval_samples $EVAL --per_device_train_batch_size $FT_BATCH"
  dirs+=("$OUT/T$T")
done
$PYTHON scripts/lstm_precision.py --study_dirs "${dirs[@]}" --lengths $LENGTHS \
  --texts_file "$DATA/unsup.jsonl.gz" --output_dir "$OUT/report" --title_note="$NOTE"
# Speed of the recurrence alone: LSTM step time in fp32, bf16 autocast with fp32 recurrence, bf16 recurrence.
for run in "fp32 true" "bf16 true" "bf16 false"; do
  set -- $run
  $PYTHON scripts/sequence_length.py --output_dir "$OUT/speed_$1_fp32rec_$2" --lengths $LENGTHS \
    --precision "$1" --lstm_fp32_recurrence "$2" --batch_tokens $TOKENS_PER_STEP --warmup 1 --repeats 3 $SPEED_SIZES
done
echo "report: $OUT/report/precision.md"
