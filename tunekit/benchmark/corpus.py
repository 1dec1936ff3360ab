"""The benchmark's text, written once to JSON Lines files that every system reads.

IMDb comes from the local copy (`imdb/unsup.jsonl.gz`, `imdb/train.jsonl.gz` under a data
directory); `synthetic` is tunekit's built-in corpus, for the smoke preset and tests.
"""

import gzip
import json
import random
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from tunekit.errors import TunekitError

VALIDATION_TEXTS = 32  # only scored after the timed window; kept small so it costs little


@dataclass(frozen=True)
class BenchmarkFiles:
    pretraining_train: Path
    pretraining_validation: Path
    finetuning_train: Path
    finetuning_validation: Path


def _read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    if not path.is_file():
        raise TunekitError(f"data_dir: no file {path}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in islice(handle, limit)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def _imdb_rows(data_dir: Path, pretraining_texts: int, finetuning_examples: int) -> tuple[list, list]:
    unsup = _read_jsonl(data_dir / "imdb" / "unsup.jsonl.gz", pretraining_texts + VALIDATION_TEXTS)
    # train.jsonl.gz is sorted by label; a seeded sample mixes both classes.
    labeled = _read_jsonl(data_dir / "imdb" / "train.jsonl.gz")
    sample = random.Random(0).sample(labeled, finetuning_examples + VALIDATION_TEXTS)
    return [{"text": row["text"]} for row in unsup], [
        {"text": row["text"], "label": row["label"]} for row in sample
    ]


def _synthetic_rows(pretraining_texts: int, finetuning_examples: int) -> tuple[list, list]:
    from tunekit.synthetic import build_synthetic_corpus

    corpus = build_synthetic_corpus(
        num_unlabeled=pretraining_texts + VALIDATION_TEXTS,
        num_train=finetuning_examples + VALIDATION_TEXTS,
        num_validation=1,
        num_test=1,
    )
    return [{"text": text} for text in corpus["unlabeled"]["text"]], list(corpus["train"])


def write_benchmark_files(
    directory: Path, source: str, data_dir: Path | None, pretraining_texts: int, finetuning_examples: int
) -> BenchmarkFiles:
    """Write the texts both systems read; the validation rows follow the training rows."""
    if source == "imdb":
        if data_dir is None:
            raise TunekitError("data_dir: the IMDb presets need a data directory holding imdb/*.jsonl.gz")
        unlabeled, labeled = _imdb_rows(data_dir, pretraining_texts, finetuning_examples)
    else:
        unlabeled, labeled = _synthetic_rows(pretraining_texts, finetuning_examples)
    if len(unlabeled) < pretraining_texts + VALIDATION_TEXTS:
        raise TunekitError(f"data_dir: only {len(unlabeled)} unlabeled texts, need {pretraining_texts}")
    directory.mkdir(parents=True, exist_ok=True)
    return BenchmarkFiles(
        pretraining_train=_write_jsonl(directory / "pretraining_train.jsonl", unlabeled[:pretraining_texts]),
        pretraining_validation=_write_jsonl(
            directory / "pretraining_validation.jsonl", unlabeled[pretraining_texts:]
        ),
        finetuning_train=_write_jsonl(directory / "finetuning_train.jsonl", labeled[:finetuning_examples]),
        finetuning_validation=_write_jsonl(
            directory / "finetuning_validation.jsonl", labeled[finetuning_examples:]
        ),
    )
