"""Offline means offline, and nothing a user hands tunekit gets unpickled or executed."""

import logging
import socket
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import TINY_RECIPE
from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.study import Study, StudyArguments
from tunekit.training.checkpoint import load_best_state, refuse_unsafe_pickles
from tunekit.training.tasks import run_finetuning, run_pretraining


class _CreatesAFile:
    """Unpickling this runs `open(marker, "w")`: the classic pickle payload, made harmless."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_malicious_pickles_in_a_checkpoint_are_refused_unexecuted(tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "step_4"
    checkpoint.mkdir()
    torch.save({"weight": torch.ones(2), "payload": _CreatesAFile(marker)}, checkpoint / "best_state.pt")
    with pytest.raises(TunekitError, match="refusing to load .*best_state.pt"):
        load_best_state(checkpoint)
    (checkpoint / "best_state.pt").unlink()
    torch.save({"last_epoch": 3}, checkpoint / "custom_checkpoint_0.pkl")
    refuse_unsafe_pickles(checkpoint)  # a plain scheduler state passes
    torch.save(_CreatesAFile(marker), checkpoint / "custom_checkpoint_0.pkl")
    with pytest.raises(TunekitError, match="refusing to load .*custom_checkpoint_0.pkl"):
        refuse_unsafe_pickles(checkpoint)
    assert not marker.exists()


def test_a_recipe_cannot_construct_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"output_dir: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(TunekitError):
        parse_recipe([str(recipe)])
    assert not marker.exists()


def _study_recipe(corpus_files, root: Path) -> str:
    common = {
        **TINY_RECIPE,
        "disable_tqdm": False,
        "per_device_train_batch_size": 4,
        "model_type": "modernbert",
    }
    stages = {
        "transformer_pretrain_recipe": {
            **common,
            "train_file": [str(corpus_files["unlabeled"])],
            "train_split": "train",
            "max_steps": 2,
            "vocab_size": 300,
            "max_seq_length": 32,
        },
        "transformer_finetune_recipe": {
            **common,
            "train_file": [str(corpus_files["train"])],
            "validation_file": str(corpus_files["validation"]),
            "test_file": str(corpus_files["test"]),
            "max_steps": 3,
            "max_seq_length": 48,
        },
    }
    study = {"output_dir": str(root / "study"), "arms": ["transformer_pretrained"], "budgets": ["8"]}
    study["seeds"] = [0]
    for name, values in stages.items():
        (root / f"{name}.yaml").write_text(yaml.safe_dump(values))
        study[name] = str(root / f"{name}.yaml")
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    return str(root / "study.yaml")


@pytest.mark.slow
def test_offline_pipeline_connects_nowhere_and_a_study_console_is_one_bar_and_a_line_per_cell(
    pretrain_argv, finetune_argv, corpus_files, tmp_path, monkeypatch, capfd, caplog
):
    """HF_HUB_OFFLINE=1 (conftest): pretrain -> fine-tune -> study with every connect() refused."""
    attempts = []

    def refuse(sock, address, *args):
        attempts.append(address)
        raise OSError(f"test: no network ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    caplog.set_level(logging.INFO)
    run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "2", "--disable_tqdm", "false"]))
    finetune = [*finetune_argv, "--max_steps", "2", "--model_name_or_path", str(tmp_path / "pretrain")]
    run_finetuning(*parse_recipe(finetune))
    single_run = capfd.readouterr().err
    assert "tokenizing" in single_run and "training" in single_run  # single runs keep their bars
    assert "new classification head; MLM decoder weights dropped" in caplog.text
    assert "LOAD REPORT" not in single_run + caplog.text

    (args,) = parse_recipe([_study_recipe(corpus_files, tmp_path)], (StudyArguments,))
    Study(args).run()
    study = capfd.readouterr()
    assert attempts == []
    console = study.out + study.err
    assert "study cells" in console and "1/1" in console
    assert "cell transformer_pretrained / budget 8 / seed 0: test accuracy" in console
    assert "tokenizing" not in console and "LOAD REPORT" not in console
    assert (
        "| 2/2 [" in console and "| 3/3 [" not in console
    )  # pretraining (2 steps) keeps its bar, cells (3) not
