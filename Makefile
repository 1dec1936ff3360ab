# `make demo` and `make test` are the only set-up a fresh clone needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests and the demo never touch the network; the metric modules ship with tunekit.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo study test lint format clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: an unpinned torch would pull several GB of CUDA wheels.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The embedded default end to end: pretrain -> fine-tune pretrained -> from scratch -> LSTM, one table.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The embedded study: pretrain once per architecture, then 4 arms x 2 label budgets x 3 seeds.
# A re-run skips finished cells; `make clean` starts over.
study: $(STAMP)
	$(BIN)/python scripts/study.py recipes/tiny/study.yaml

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf outputs .pytest_cache .ruff_cache
