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

.PHONY: install demo study walkthrough imdb-cpu test lint format clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: an unpinned torch would pull several GB of CUDA wheels.
# -qq: pip prints errors only (not the warnings a machine's own pip config can trigger).
PIP_QUIET := -qq
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) torch==2.13.0
	$(BIN)/pip install $(PIP_QUIET) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The five-minute demo: the embedded study at 100 labels (recipes/tiny/demo.yaml: one tokenizer, MLM
# pretraining of the encoder and LM pretraining of the biLSTM, then 4 arms x 3 seeds); prints the summary
# table and the paths of outputs/tiny/demo/{report.md,learning_curve.png}. A re-run skips finished cells;
# `make clean` starts over.
demo: $(STAMP)
	$(BIN)/python scripts/study.py recipes/tiny/demo.yaml

# The whole embedded study (~15 min on 2 cores): 4 arms x 100 and 1 000 labels x 3 seeds, longer
# pretraining (recipes/tiny/study.yaml; its committed results are docs/results/tiny).
study: $(STAMP)
	$(BIN)/python scripts/study.py recipes/tiny/study.yaml

# The laptop-hour IMDb study on the local copy (IMDB_DATA): recipes/imdb_cpu/objectives.yaml (61 min on a
# 2-core AVX-512 host; sizes measured in docs/results/imdb_cpu/design.md); writes outputs/imdb_cpu/objectives.
# STUDY_FLAGS extend it in place, reusing what is finished (more FLOPs budgets, seeds: see the recipe).
IMDB_DATA ?= ../shared/data/imdb
# The objectives at equal FLOPs (MLM 15 % / 40 %, RTD, document bag of words) + the LSTM pair; IMDB_STUDY=recipes/imdb_cpu/study.yaml
# runs the MLM-only study on a token axis instead (its longer budgets: recipes/imdb_cpu/study.yaml).
IMDB_STUDY ?= recipes/imdb_cpu/objectives.yaml
STUDY_FLAGS ?=
imdb-cpu: $(STAMP)
	$(BIN)/python scripts/study.py $(IMDB_STUDY) \
	  --pretrain_overrides="--train_file $(IMDB_DATA)/unsup.jsonl.gz $(IMDB_DATA)/train.jsonl.gz --train_split train --test_file $(IMDB_DATA)/test.jsonl.gz" \
	  --finetune_overrides="--train_file $(IMDB_DATA)/train.jsonl.gz --test_file $(IMDB_DATA)/test.jsonl.gz" \
	  $(STUDY_FLAGS)

# The four single runs behind one cell of each arm: pretrain -> fine-tune pretrained -> from scratch
# -> LSTM, one table (~8 min).
walkthrough: $(STAMP)
	$(BIN)/python scripts/walkthrough.py

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
