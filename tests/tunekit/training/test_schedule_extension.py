"""A finished run, extended: `--resume_from_checkpoint latest --max_steps N` with a larger N trains on,
with its learning-rate schedule rebuilt for the new horizon (said in one line, kept in results.json)."""

import json
import logging

import pytest
from safetensors.torch import load_file

from tunekit.cli import run_script
from tunekit.training.tasks import run_pretraining


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def six_step_run(pretrain_argv, tmp_path):
    # warmup 0: the rebuilt linear schedule is then base * (10 - step) / 10
    argv = [*pretrain_argv, "--max_steps", "6", "--save_steps", "3", "--warmup_ratio", "0"]
    assert run_script(run_pretraining, argv) == 0
    return argv, tmp_path / "pretrain"


def test_a_finished_run_extends_from_6_to_10_steps(six_step_run, caplog):
    argv, out = six_step_run
    six = load_file(out / "model.safetensors")
    assert metrics(out)[-2]["learning_rate"] == 0.0  # the 6-step schedule has decayed to 0
    caplog.set_level(logging.INFO)
    assert (
        run_script(run_pretraining, [*argv, "--resume_from_checkpoint", "latest", "--max_steps", "10"]) == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["global_step"] == 10
    assert results["schedule_extensions"] == [
        {
            "at_step": 6,
            "from_total_steps": 6,
            "to_total_steps": 10,
            "learning_rate": pytest.approx(1e-3 * 0.4),
        }
    ]
    said = [r.getMessage() for r in caplog.records if r.name == "tunekit.training.schedule_extension"]
    assert said == [
        "extending the run from 6 to 10 steps: the learning-rate schedule is rebuilt for 10 steps and "
        "continues at step 6 with learning rate 0.0004"
    ]
    rates = {line["step"]: line["learning_rate"] for line in metrics(out) if "learning_rate" in line}
    assert sorted(rates) == list(range(1, 11))  # each step logged once
    for step in range(7, 11):
        assert rates[step] == pytest.approx(1e-3 * (10 - step) / 10)
    ten = load_file(out / "model.safetensors")
    assert any(not ten[key].equal(six[key]) for key in six)
    # the extended run's checkpoints carry the new horizon: resuming them again changes nothing more
    progress = json.loads((out / "checkpoints" / "step_9" / "progress.json").read_text())
    assert progress["total_steps"] == 10 and len(progress["schedule_extensions"]) == 1


def test_a_horizon_at_or_below_the_checkpoint_is_one_line(six_step_run, capsys):
    argv, out = six_step_run
    before = (out / "results.json").read_bytes()
    assert run_script(run_pretraining, [*argv, "--resume_from_checkpoint", "latest", "--max_steps", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: max_steps=4: the checkpoint is already at step 6, so nothing is left to train; "
        "give a larger max_steps (or num_train_epochs) to extend the run"
    )
    assert (out / "results.json").read_bytes() == before
