import gzip
import json

import pytest

from tools.preprocess_memory import measure_preprocessing_memory, spread_of_jsonl_gz
from tunekit.errors import TunekitError

WORDS = ["great", "awful", "plot", "film", "acting", "not", "the", "was", "a", "scene"]


def write_imdb_like(directory, rows: int) -> None:
    """unsup.jsonl.gz and train.jsonl.gz; train is sorted by label, as IMDb's is."""
    for name, label in (("unsup", -1), ("train", None)):
        with gzip.open(directory / f"{name}.jsonl.gz", "wt") as handle:
            for i in range(rows):
                text = " ".join(WORDS[(i * j + j) % len(WORDS)] for j in range(30 + i % 50))
                handle.write(
                    json.dumps({"text": text, "label": label if label is not None else int(i >= rows // 2)})
                    + "\n"
                )


def test_spread_of_jsonl_gz_copies_an_even_spread_of_rows(tmp_path):
    write_imdb_like(tmp_path, 40)
    assert spread_of_jsonl_gz(tmp_path / "train.jsonl.gz", 0.25, tmp_path / "spread.jsonl.gz") == 10
    with (
        gzip.open(tmp_path / "spread.jsonl.gz", "rt") as spread,
        gzip.open(tmp_path / "train.jsonl.gz", "rt") as full,
    ):
        assert spread.read().splitlines() == full.read().splitlines()[::4]


def test_preprocessing_runs_in_a_child_and_reports_its_peak(tmp_path):
    write_imdb_like(tmp_path, 80)
    report = measure_preprocessing_memory(tmp_path, 0.5, vocab_size=200, block_size=32, max_length=48)
    assert report.pretraining_texts == 80 and report.classification_texts == 40 and report.mlm_blocks > 0
    assert 0 < report.baseline_mb <= report.peak_mb_by_phase["tokenizer"] <= report.peak_mb
    anonymous = report.peak_anonymous_mb_by_phase
    assert list(anonymous) == ["split", "tokenizer", "pack", "classification"]
    assert list(anonymous.values()) == sorted(anonymous.values())
    assert anonymous["classification"] == report.peak_anonymous_mb


def test_bad_fraction_and_missing_files_are_named(tmp_path):
    with pytest.raises(TunekitError, match="fraction"):
        measure_preprocessing_memory(tmp_path, 0.0)
    with pytest.raises(TunekitError, match="lacks unsup.jsonl.gz, train.jsonl.gz"):
        measure_preprocessing_memory(tmp_path, 0.5)
