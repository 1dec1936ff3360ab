#!/usr/bin/env bash
# Run every multi-process test (pytest marker `multiprocess`: 2 processes under torch.distributed.run)
# N times in a row and report, per iteration, pass / fail / hang and its seconds, then one summary line.
#
#   bash scripts/multiprocess_soak.sh 30            # from the repository root, after `make install`
#   bash scripts/multiprocess_soak.sh 2 -x          # extra arguments go to pytest
#
# A hang is an iteration pytest-timeout stopped (the test failed with "Timeout"; the test then kills its
# own process groups) or one that outlived the outer limit (SOAK_LIMIT seconds, default 1800). Logs of the
# iterations that did not pass are kept under SOAK_LOGS (default outputs/multiprocess_soak).
set -u
iterations=${1:-30}
shift $(($# > 0 ? 1 : 0))
python=${PYTHON:-.venv/bin/python}
limit=${SOAK_LIMIT:-1800}
logs=${SOAK_LOGS:-outputs/multiprocess_soak}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_NO_ADVISORY_WARNINGS=1
mkdir -p "$logs"
passed=0 failed=0 hung=0 times=()
for i in $(seq 1 "$iterations"); do
  log="$logs/iteration_$i.log"
  start=$SECONDS
  timeout --kill-after=30 "$limit" "$python" -m pytest -q -m multiprocess -p no:cacheprovider "$@" \
    >"$log" 2>&1
  status=$?
  seconds=$((SECONDS - start))
  times+=("$seconds")
  if [ "$status" -eq 0 ]; then
    result=pass passed=$((passed + 1))
    rm -f "$log"
  elif [ "$status" -ge 124 ] || grep -q "Failed: Timeout" "$log"; then
    result=hang hung=$((hung + 1))
  else
    result=fail failed=$((failed + 1))
  fi
  printf 'iteration %d/%d: %s in %d s%s\n' "$i" "$iterations" "$result" "$seconds" \
    "$([ "$result" = pass ] || echo " (log: $log)")"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
printf 'multiprocess soak: %d iterations: %d passed, %d failed, %d hung; seconds per iteration min %d, median %d, max %d\n' \
  "$iterations" "$passed" "$failed" "$hung" "$(echo "$sorted" | head -1)" "$median" "$(echo "$sorted" | tail -1)"
[ "$passed" -eq "$iterations" ]
