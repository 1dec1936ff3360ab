#!/usr/bin/env bash
# The GPU run, prepared so that one or two device calls get it done (see tools/gpu_session.py).
#
# Here, once:   bash scripts/prepare_gpu_run.sh      (wheels -> .whl/, compact IMDb -> device_data/)
# Smoke on CPU: SMOKE=1 bash scripts/gpu_run.sh       (tiny sizes, a slice of the local data, < 2 min)
# Device call 1 (carry [".whl", "device_data/imdb"], timeout_s >= BUDGET_S + 45):
#               PHASE=1 BUDGET_S=430 bash scripts/gpu_run.sh
# Device call 2, AT ONCE (the machine stays warm 30 s and keeps outputs/gpu_run), same carry,
# BUDGET_S = what the first reply's lease.budget_left_s leaves, less ~50 s:
#               PHASE=2 BUDGET_S=... bash scripts/gpu_run.sh
# On a fresh machine instead, call 2 restores call 1's archive: copy what came back into
# device_data/previous/ and carry that folder too (device_data/call2 is a smaller data copy).
# Each call stops itself at BUDGET_S (default 510 s), rebuilds the study report from the cells that
# finished and packs $OUT/gpu_run.tar.gz (results and logs) and, if they fit in what the device
# returns, $OUT/gpu_models.tar.gz (the weights), each in < 16 MiB parts when larger.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export TRANSFORMERS_NO_ADVISORY_WARNINGS=1
PHASE=${PHASE:-1}
if [[ "${SMOKE:-0}" == 1 ]]; then
  PY=${PYTHON:-python}
  export DATA_DIR=${DATA_DIR:-outputs/gpu_run_smoke/data/imdb} RUN_DIR=${RUN_DIR:-outputs/gpu_run_smoke/run}
  export OUT=${OUT:-outputs/gpu_run_smoke/out} BUDGET_S=${BUDGET_S:-170}
  "$PY" scripts/prepare_gpu_data.py --rows 240 --output_dir "$DATA_DIR" || exit 2
  exec "$PY" scripts/gpu_run.py run --smoke --phase "$PHASE"
fi
# The device image lacks datasets/evaluate (and their pins): carried as wheels, installed aside.
if compgen -G ".whl/*.whl" > /dev/null && [[ ! -f /tmp/site/.tunekit_wheels ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 2
  if ! python3 -c "import pyarrow as p, sys; sys.exit(int(p.__version__.split('.')[0]) < 24)"; then
    # datasets 5 wants pyarrow >= 24; an older image gets datasets 4.4 and its pins.
    rm -rf /tmp/site
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
      .whl/evaluate*.whl .whl/transformers*.whl .whl/regex*.whl .whl/alt/*.whl || exit 2
  fi
  touch /tmp/site/.tunekit_wheels  # a second call on the same machine skips the install
fi
export PYTHONPATH=/tmp/site:$PWD
exec python3 scripts/gpu_run.py run --phase "$PHASE"
