#!/usr/bin/env bash
# Before a device call: the wheels the GPU image lacks (.whl/, git-ignored) and the compact IMDb copy
# (device_data/, git-ignored), then the size that would travel. Idempotent; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl/alt
# Same versions as here, built for the image's Python 3.12. The image has torch 2.11, transformers
# 5.17, accelerate, peft, pyarrow; its pyarrow may be older than datasets 5 wants (>= 24), hence
# datasets 4.4 and its pins in .whl/alt.
GET=("$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12)
"${GET[@]}" -d .whl datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0 \
  transformers==5.24.0
"${GET[@]}" -d .whl/alt datasets==4.4.1 dill==0.4.0 multiprocess==0.70.18 fsspec==2025.10.0
# transformers checks regex's version at import; the image's may be older than it wants.
"${GET[@]}" -d .whl --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 regex==2026.11.19
"$PY" scripts/prepare_gpu_data.py --output_dir device_data/imdb --splits train test unsup
# Call 1 (the benchmark) reads only the presets' slice: labeled train + 9 000 unsup rows. Call 2
# (the study, whose pretraining reads all of unsup) carries device_data/imdb.
mkdir -p device_data/call1/imdb
cp -n device_data/imdb/train.jsonl.xz device_data/call1/imdb/
"$PY" scripts/prepare_gpu_data.py --output_dir device_data/call1/imdb --splits unsup --rows 9000
echo "call 1 carries .whl + device_data/call1: $(du -cm .whl device_data/call1 | tail -1 | cut -f1) MiB of 64"
echo "call 2 carries .whl + device_data/imdb (+ device_data/previous on a fresh machine):" \
  "$(du -cm .whl device_data/imdb | tail -1 | cut -f1) MiB + what call 1 returned"
