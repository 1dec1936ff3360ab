"""The shrunken study every runner test starts from: tiny recipes for all five stages on the
synthetic corpus slice, two arms, label budgets 8 and all, one seed."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_RECIPE


def write_recipe(path: Path, values: dict) -> str:
    path.write_text(yaml.safe_dump(values))
    return str(path)


@pytest.fixture
def study_recipe(corpus_files, tmp_path) -> str:
    labeled = {
        "train_file": [str(corpus_files["train"])],
        "validation_file": str(corpus_files["validation"]),
        "test_file": str(corpus_files["test"]),
        "max_seq_length": 48,
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-3,
        **TINY_RECIPE,
    }
    pretrain = {
        "train_file": [str(corpus_files["unlabeled"])],
        "test_file": str(corpus_files["test"]),
        "train_split": "train",
        "vocab_size": 300,
        "max_seq_length": 32,
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        **TINY_RECIPE,
    }
    recipes = {
        "transformer_pretrain_recipe": {**pretrain, "model_type": "modernbert"},
        "lstm_pretrain_recipe": {**pretrain, "model_type": "lstm"},
        "transformer_finetune_recipe": {**labeled, "model_type": "modernbert"},
        "transformer_scratch_recipe": {**labeled, "model_type": "modernbert"},
        "lstm_finetune_recipe": {**labeled, "model_type": "lstm"},
    }
    study = {name: write_recipe(tmp_path / f"{name}.yaml", values) for name, values in recipes.items()}
    study |= {
        "output_dir": str(tmp_path / "study"),
        "arms": ["transformer_pretrained", "lstm_pretrained"],
        "budgets": ["8", "all"],
        "seeds": [0],
    }
    return write_recipe(tmp_path / "study.yaml", study)
