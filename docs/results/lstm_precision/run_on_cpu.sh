#!/usr/bin/env bash
# Issue 8 §2: does the LSTM need its recurrence in fp32? Runs the LSTM arms (scratch and
# LM-pretrained) with the recurrence in fp32 and in bf16 at T = 256 and 512 on the local IMDb copy,
# in the CPU study's setting, then writes the report (LM loss curves, accuracy difference with
# paired 95% intervals, speed, gradient norms across time steps).
#
#   bash docs/results/lstm_precision/run_on_cpu.sh            # the real run (~70 min on 2 idle cores)
#   SMOKE=1 bash docs/results/lstm_precision/run_on_cpu.sh    # T=256, a few steps: checks the plumbing
#
# bf16: on a CPU with bf16 units (amx_bf16/avx512_bf16 in /proc/cpuinfo) every stage runs under bf16
# autocast and the bf16 arms' recurrence runs in bf16. Without them a bf16 matmul runs ~90x slower
# than fp32 here, so the bf16 arms instead round an fp32 recurrence to bf16 after every operation
# and nothing runs under autocast (ROUNDED=true/false forces either).
# Knobs (environment): DATA (IMDb folder), OUT (outputs), LENGTHS, SEEDS, BUDGETS, LM_STEPS, FT_STEPS,
# FT_BATCH, EVAL/TEST (validation/test examples), TOKENS_PER_STEP (LM batch = TOKENS_PER_STEP / T, so
# both lengths see the same tokens). Re-running resumes: finished pretrainings and cells are skipped.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-${TUNEKIT_SHARED_DATA:-../shared/data}/imdb}
PYTHON=${PYTHON:-.venv/bin/python}
if [[ "${SMOKE:-0}" == 1 ]]; then
  OUT=${OUT:-outputs/lstm_precision_smoke}; LENGTHS=${LENGTHS:-256}; SEEDS=${SEEDS:-"0 1"}
  LM_STEPS=${LM_STEPS:-15}; FT_STEPS=${FT_STEPS:-8}; TOKENS_PER_STEP=${TOKENS_PER_STEP:-2048}
  BUDGETS=${BUDGETS:-"200"}; EVAL=${EVAL:-100}; TEST=${TEST:-100}; FT_BATCH=${FT_BATCH:-8}
  NOTE=" (SMOKE RUN: a few steps, not the finding)"; SIZES="--hidden_size 32"; VOCAB="--vocab_size 1024"
  SPEED="--speed_hidden_size 32 --speed_batch_tokens 512"
else
  OUT=${OUT:-outputs/lstm_precision}; LENGTHS=${LENGTHS:-"256 512"}; SEEDS=${SEEDS:-"0 1 2"}
  LM_STEPS=${LM_STEPS:-200}; FT_STEPS=${FT_STEPS:-120}; TOKENS_PER_STEP=${TOKENS_PER_STEP:-4096}
  BUDGETS=${BUDGETS:-"1000"}; EVAL=${EVAL:-500}; TEST=${TEST:-2000}; FT_BATCH=${FT_BATCH:-16}
  NOTE=""; SIZES=""; VOCAB=""; SPEED=""
fi
if [[ -z "${ROUNDED:-}" ]]; then
  grep -qw -e amx_bf16 -e avx512_bf16 /proc/cpuinfo 2>/dev/null && ROUNDED=false || ROUNDED=true
fi
[[ "$ROUNDED" == true ]] && PRECISION="" || PRECISION="--mixed_precision bf16"
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
    --output_dir "$OUT/T$T" --seeds $SEEDS --budgets $BUDGETS --lstm_bf16_rounded "$ROUNDED" \
    --stage_overrides="--max_seq_length $T $PRECISION" \
    --pretrain_overrides="$PRETRAIN_DATA $SIZES $VOCAB --max_steps $LM_STEPS --per_device_train_batch_size $((TOKENS_PER_STEP / T))" \
    --finetune_overrides="$FINETUNE_DATA $SIZES --max_steps $FT_STEPS --max_eval_samples $EVAL --max_test_samples $TEST --per_device_train_batch_size $FT_BATCH"
  dirs+=("$OUT/T$T")
done
$PYTHON scripts/lstm_precision.py --study_dirs "${dirs[@]}" --lengths $LENGTHS $SPEED \
  --texts_file "$DATA/unsup.jsonl.gz" --output_dir "$OUT/report" --title_note="$NOTE"
echo "report: $OUT/report/precision.md"
