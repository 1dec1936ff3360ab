"""The exactness checks every pretraining objective passes (MLM's are in test_loop.py): gradient
accumulation gives one big batch's step, and a run resumed mid-epoch is bitwise the uninterrupted
one. Shared by the objectives' tests, each with its own flags and its own way to read weights."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.tunekit.training.test_loop import records
from tunekit.config import parse_recipe
from tunekit.training.tasks import run_pretraining

Weights = Callable[[Path], dict[str, torch.Tensor]]


def assert_weights_close(a: Path, b: Path, weights: Weights, atol: float) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], atol=atol, rtol=0, msg=name)


def check_accumulation_matches_one_big_batch(argv: list[str], tmp_path: Path, weights: Weights) -> None:
    common = [*argv, "--max_steps", "3", "--max_grad_norm", "0"]
    run_pretraining(*parse_recipe([*common, "--output_dir", str(tmp_path / "big")]))
    accumulated = ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "4"]
    run_pretraining(*parse_recipe([*common, *accumulated, "--output_dir", str(tmp_path / "accumulated")]))
    assert_weights_close(tmp_path / "big", tmp_path / "accumulated", weights, atol=1e-5)
    losses = [[r["loss"] for r in records(tmp_path / name) if "loss" in r] for name in ("big", "accumulated")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def check_resume_mid_epoch_is_bitwise(argv: list[str], tmp_path: Path, weights: Weights) -> None:
    argv = [
        *argv,
        *("--dropout", "0.1", "--max_steps", "12", "--save_steps", "4", "--save_total_limit", "5"),
        *("--gradient_accumulation_steps", "2", "--per_device_train_batch_size", "4"),
    ]
    run_pretraining(*parse_recipe([*argv, "--output_dir", str(tmp_path / "full")]))
    checkpoint = tmp_path / "full" / "checkpoints" / "step_4"
    resumed = ["--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", str(checkpoint)]
    run_pretraining(*parse_recipe([*argv, *resumed]))
    first, second = weights(tmp_path / "full"), weights(tmp_path / "resumed")
    assert first.keys() == second.keys()
    assert [name for name in first if not torch.equal(first[name], second[name])] == []
    assert records(tmp_path / "resumed")[0]["step"] == 5
    full = {r["step"]: r["loss"] for r in records(tmp_path / "full") if "loss" in r}
    assert all(full[r["step"]] == r["loss"] for r in records(tmp_path / "resumed") if "loss" in r)
