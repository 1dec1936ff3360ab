"""The benchmark's text, written once to JSON Lines files that every system reads.

IMDb comes from the local copy (`imdb/unsup.jsonl.gz`, `imdb/train.jsonl.gz` under a data
directory); `synthetic` is tunekit's built-in corpus, for the smoke preset and tests.
"""

import gzip
import json
import lzma
import random
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from tunekit.benchmark.presets import Preset
from tunekit.errors import TunekitError


@dataclass(frozen=True)
class BenchmarkFiles:
    pretraining_train: Path
    pretraining_validation: Path
    finetuning_train: Path
    finetuning_validation: Path


def _read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    """`path` or its .xz twin (the compact copy the GPU run carries)."""
    if not path.is_file() and path.with_suffix(".xz").is_file():
        path = path.with_suffix(".xz")
    if not path.is_file():
        raise TunekitError(f"data_dir: no file {path}")
    opener = lzma.open if path.suffix == ".xz" else gzip.open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in islice(handle, limit)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def _imdb_rows(
    data_dir: Path, pretraining_texts: int, finetuning_examples: int, validation: int
) -> tuple[list, list]:
    unsup = _read_jsonl(data_dir / "imdb" / "unsup.jsonl.gz", pretraining_texts + validation)
    # train.jsonl.gz is sorted by label; a seeded sample mixes both classes.
    labeled = _read_jsonl(data_dir / "imdb" / "train.jsonl.gz")
    sample = random.Random(0).sample(labeled, finetuning_examples + validation)
    return [{"text": row["text"]} for row in unsup], [
        {"text": row["text"], "label": row["label"]} for row in sample
    ]


def _synthetic_rows(pretraining_texts: int, finetuning_examples: int, validation: int) -> tuple[list, list]:
    from tunekit.data.synthetic import build_synthetic_corpus

    corpus = build_synthetic_corpus(
        num_unlabeled=pretraining_texts + validation,
        num_train=finetuning_examples + validation,
        num_validation=1,
        num_test=1,
    )
    return [{"text": text} for text in corpus["unlabeled"]["text"]], list(corpus["train"])


def write_benchmark_files(directory: Path, preset: Preset, data_dir: Path | None) -> BenchmarkFiles:
    """Write the texts both systems read; `validation_texts` validation rows follow the training rows."""
    pretraining_texts, finetuning_examples = preset.pretraining_texts, preset.finetuning_examples
    sizes = (pretraining_texts, finetuning_examples, preset.validation_texts)
    if preset.data == "imdb":
        if data_dir is None:
            raise TunekitError("data_dir: the IMDb presets need a data directory holding imdb/*.jsonl.gz")
        unlabeled, labeled = _imdb_rows(data_dir, *sizes)
    else:
        unlabeled, labeled = _synthetic_rows(*sizes)
    if len(unlabeled) < pretraining_texts + preset.validation_texts:
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
