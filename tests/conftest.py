"""Shared fixtures: tiny data written to real files, and tiny recipes, so tests exercise the
same paths as users (file loading, tokenizer training, the loop) in seconds on a CPU."""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

# The one tiny transformer every test builds, in each form a test needs it: config sizes (TINY_SIZES),
# recipe fields (TINY_FIELDS), recipe YAML values (TINY_RECIPE) and command-line flags (TINY_MODEL,
# TINY_SIZE_FLAGS without a model type). A test that needs a second layer says so (TWO_LAYERS).
TINY_SIZES = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
TWO_LAYERS = {**TINY_SIZES, "num_hidden_layers": 2}
TINY_FIELDS = {**TINY_SIZES, "max_position_embeddings": 64, "dropout": 0.0}
TINY_SIZE_FLAGS = ["--vocab_size", "300", *(f"--{name}={value}" for name, value in TINY_FIELDS.items())]
TINY_MODEL = ["--model_type", "modernbert", *TINY_SIZE_FLAGS]
QUIET = ["--disable_tqdm", "true", "--report_to", "none"]
# The same tiny model and quiet logging, as recipe YAML values.
TINY_RECIPE = {**TINY_FIELDS, "report_to": "none", "disable_tqdm": True}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small slice of the synthetic corpus as jsonl files: unlabeled, train, validation, test."""
    from tunekit.data.synthetic import build_synthetic_corpus

    corpus = build_synthetic_corpus(seed=0, num_unlabeled=400, num_train=64, num_validation=32, num_test=32)
    root = tmp_path_factory.mktemp("corpus")
    files = {}
    for split, dataset in corpus.items():
        files[split] = write_jsonl(root / f"{split}.jsonl", [dict(row) for row in dataset])
    return files


@pytest.fixture
def pretrain_argv(corpus_files: dict[str, Path], tmp_path: Path) -> list[str]:
    return [
        "--train_file",
        str(corpus_files["unlabeled"]),
        "--train_split",
        "train",
        *TINY_MODEL,
        *QUIET,
        "--max_seq_length",
        "32",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "1e-3",
        "--output_dir",
        str(tmp_path / "pretrain"),
        "--logging_steps",
        "1",
        "--seed",
        "1",
    ]


@pytest.fixture
def finetune_argv(corpus_files: dict[str, Path], tmp_path: Path) -> list[str]:
    return [
        "--train_file",
        str(corpus_files["train"]),
        "--validation_file",
        str(corpus_files["validation"]),
        "--test_file",
        str(corpus_files["test"]),
        *TINY_MODEL,
        *QUIET,
        "--max_seq_length",
        "48",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "1e-3",
        "--logging_steps",
        "1",
        "--output_dir",
        str(tmp_path / "finetune"),
        "--seed",
        "1",
    ]


@pytest.fixture(scope="module")
def pretrained_encoder(corpus_files, tmp_path_factory) -> Path:
    """A tiny ModernBERT after a few MLM steps: the base that LoRA adapts."""
    output_dir = tmp_path_factory.mktemp("lora") / "pretrain"
    argv = ["--train_file", str(corpus_files["unlabeled"]), "--train_split", "train", *TINY_MODEL, *QUIET]
    from tunekit.config import parse_recipe
    from tunekit.training.tasks import run_pretraining

    run_pretraining(
        *parse_recipe([*argv, "--max_seq_length=32", "--max_steps=3", f"--output_dir={output_dir}"])
    )
    return output_dir


INTEGRATION = REPO / "tests" / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ (end-to-end scripts, multi-process runs, whole pipelines)
    is marked `integration`: `pytest -m "not integration"` runs the unit tree alone."""
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
