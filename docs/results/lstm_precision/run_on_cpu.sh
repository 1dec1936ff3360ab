#!/usr/bin/env bash
# Issue 8 §2 / issue 34: does the LSTM need its recurrence in fp32 where a transformer trains in
# bf16? Runs the LSTM arms (scratch and LM-pretrained) with the recurrence in fp32 and in bf16, and
# (on a CPU with bf16 units) the CPU study's transformer (scratch and MLM-pretrained) in fp32 and
# under bf16 autocast, at T = 256 and 512 on the local IMDb copy, in the CPU study's setting, then
# writes the report (LM loss curves, accuracy difference with paired 95% intervals, speed, gradient
# norms across time steps).
#
#   bash docs/results/lstm_precision/run_on_cpu.sh            # the real run (~2.5 h on 2 busy cores)
#   SMOKE=1 bash docs/results/lstm_precision/run_on_cpu.sh    # T=256, a few steps: checks the plumbing
#
# bf16: on a CPU with bf16 units (amx_bf16/avx512_bf16 in /proc/cpuinfo) every stage runs under bf16
# autocast and the bf16 arms' recurrence runs in bf16. Without them a bf16 matmul runs ~90x slower
# than fp32 here, so the bf16 arms instead round an fp32 recurrence to bf16 after every operation
# and nothing runs under autocast (ROUNDED=true/false forces either).
# The transformer studies (recipes/lstm_precision/transformer_study.yaml) run once in fp32 and once
# with every stage under bf16 autocast, into T<T>_transformer_{fp32,bf16}; TRANSFORMER=true/false
# forces them on or off (default: on where the CPU has bf16 units, where emulated bf16 is 15-19x slower).
# PARTS="lstm transformer report" and TRANSFORMER_PRECISIONS="fp32 bf16" pick what runs (the report
# reads whatever exists); e.g. PARTS=lstm and PARTS=transformer as two processes, one per core, with
# OMP_NUM_THREADS=1, then PARTS=report.
# ROUNDED_REPORT: a committed rounded-bf16 report folder to compare with (real bf16 runs only).
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
TRANSFORMER=${TRANSFORMER:-$([[ "$ROUNDED" == true ]] && echo false || echo true)}
PARTS=${PARTS:-"lstm transformer report"}; TRANSFORMER_PRECISIONS=${TRANSFORMER_PRECISIONS:-"fp32 bf16"}
if [[ "$ROUNDED" == false && -z "${ROUNDED_REPORT+set}" ]]; then
  ROUNDED_REPORT=docs/results/lstm_precision  # the committed rounded-bf16 run, to compare with
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
study() {  # study RECIPE OUTPUT_DIR T PRECISION_FLAGS [more study flags]
  local recipe=$1 output_dir=$2 T=$3 precision=$4
  shift 4
  $PYTHON scripts/study.py "$recipe" --output_dir "$output_dir" --seeds $SEEDS --budgets $BUDGETS "$@" \
    --stage_overrides="--max_seq_length $T $precision" \
    --pretrain_overrides="$PRETRAIN_DATA $SIZES $VOCAB --max_steps $LM_STEPS --per_device_train_batch_size $((TOKENS_PER_STEP / T))" \
    --finetune_overrides="$FINETUNE_DATA $SIZES --max_steps $FT_STEPS --max_eval_samples $EVAL --max_test_samples $TEST --per_device_train_batch_size $FT_BATCH"
}
share_tokenizer() {  # every study at one T fine-tunes on the same WordPiece (the first one trained)
  local from=$1 to=$2
  if [[ -f "$from/tokenizer/tokenizer.json" && ! -e "$to/tokenizer" ]]; then
    mkdir -p "$to" && cp -r "$from/tokenizer" "$to/tokenizer"
  fi
}
dirs=(); transformer_dirs=()
for T in $LENGTHS; do
  if [[ " $PARTS " == *" lstm "* ]]; then
    study recipes/lstm_precision/study.yaml "$OUT/T$T" "$T" "$PRECISION" --lstm_bf16_rounded "$ROUNDED"
  fi
  dirs+=("$OUT/T$T")
  if [[ "$TRANSFORMER" == true && " $PARTS " == *" transformer "* ]]; then
    for precision in $TRANSFORMER_PRECISIONS; do
      share_tokenizer "$OUT/T$T" "$OUT/T${T}_transformer_$precision"
      share_tokenizer "$OUT/T${T}_transformer_fp32" "$OUT/T${T}_transformer_$precision"
      [[ $precision == bf16 ]] && flags="--mixed_precision bf16" || flags=""
      # The scratch arm first: it needs no pretraining, so a run stopped early already has its pairs.
      study recipes/lstm_precision/transformer_study.yaml "$OUT/T${T}_transformer_$precision" "$T" "$flags" \
        --arms transformer_scratch --cell_overrides "transformer_scratch@*: --learning_rate 1e-3"
      study recipes/lstm_precision/transformer_study.yaml "$OUT/T${T}_transformer_$precision" "$T" "$flags"
    done
  fi
  [[ "$TRANSFORMER" == true ]] && transformer_dirs+=("$OUT/T${T}_transformer_fp32" "$OUT/T${T}_transformer_bf16")
done
[[ " $PARTS " == *" report "* ]] || exit 0
transformer_flags=()
[[ ${#transformer_dirs[@]} -gt 0 ]] && transformer_flags=(--transformer_dirs "${transformer_dirs[@]}")
$PYTHON scripts/lstm_precision.py --study_dirs "${dirs[@]}" --lengths $LENGTHS $SPEED "${transformer_flags[@]}" \
  --rounded_report_dir="${ROUNDED_REPORT:-}" \
  --texts_file "$DATA/unsup.jsonl.gz" --output_dir "$OUT/report" --title_note="$NOTE"
echo "report: $OUT/report/precision.md"
