"""Killed and preempted runs resume bit-exactly: real subprocesses get SIGKILL or SIGTERM mid-run.

Kill points are drawn from a seeded RNG (TUNEKIT_KILL_SEED) and printed, so a failure can be
replayed; `pytest -s` shows them.
"""

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import QUIET, REPO, TINY_MODEL
from tests.integration import launch
from tests.processes import bounded_popen, run_bounded
from tunekit.config import parse_recipe
from tunekit.training.checkpoint import list_checkpoints
from tunekit.training.preemption import (
    EXIT_PREEMPTED,
    NonFiniteLoss,
)
from tunekit.training.tasks import run_pretraining

KILL_SEED = int(os.environ.get("TUNEKIT_KILL_SEED", "1127"))
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": str(REPO),
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
# Accumulation 2, dropout on, and fine-tuning crosses epochs (64 examples, 8 per optimizer step).
STEPS = 40
COMMON = [
    *TINY_MODEL,
    *QUIET,
    *("--dropout", "0.1", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2"),
    *("--learning_rate", "1e-3", "--logging_steps", "1", "--save_steps", "6", "--seed", "3"),
    *("--max_steps", str(STEPS), "--save_total_limit", "2"),
]


def task_argv(task: str, files: dict[str, Path]) -> list[str]:
    if task == "pretrain":
        return ["--train_file", str(files["unlabeled"]), "--train_split", "train", "--max_seq_length", "32"]
    return [
        *("--train_file", str(files["train"]), "--validation_file", str(files["validation"])),
        *("--max_seq_length", "48", "--model_name_or_path", "none", "--max_train_samples", "64"),
    ]


def script_command(task: str, argv: list[str]) -> list[str]:
    return [sys.executable, str(REPO / "scripts" / f"{task}.py"), *argv]


def run_to_end(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        done = run_bounded(command, stdout=out, stderr=subprocess.STDOUT, env=ENV, timeout=300)
    assert done.returncode == 0, log.read_text()[-3000:]


def last_step(output_dir: Path) -> int:
    path = output_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return max((json.loads(line)["step"] for line in lines if line.endswith("}")), default=0)


def wait_for_step(output_dir: Path, step: int, process: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + 300
    while (reached := last_step(output_dir)) < step:
        assert process.poll() is None, f"the run ended before step {step}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.002)
    return reached


def bitwise_equal(a: Path, b: Path) -> None:
    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    differing = [name for name in first if not torch.equal(first[name], second[name])]
    assert not differing, f"weights differ: {differing[:5]}"


@pytest.fixture(scope="module")
def reference(corpus_files, tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted runs, one per task, in subprocesses like the interrupted ones."""
    root = tmp_path_factory.mktemp("reference")
    for task in ("pretrain", "finetune"):
        argv = [*task_argv(task, corpus_files), *COMMON, "--output_dir", str(root / task)]
        run_to_end(script_command(task, argv), root / f"{task}.log")
    return {task: root / task for task in ("pretrain", "finetune")}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pretrain", "finetune"])
def test_sigkill_at_a_random_step_then_resume_latest_is_bitwise_identical(
    task, corpus_files, reference, tmp_path
):
    kill_at = random.Random(f"{KILL_SEED}-{task}").randint(8, STEPS - 8)
    output_dir, log = tmp_path / task, tmp_path / "run.log"
    argv = [*task_argv(task, corpus_files), *COMMON, "--output_dir", str(output_dir)]
    command = script_command(task, argv)
    with (
        log.open("w") as out,
        bounded_popen(command, stdout=out, stderr=subprocess.STDOUT, env=ENV) as process,
    ):
        reached = wait_for_step(output_dir, kill_at, process, log)
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed_from = list_checkpoints(output_dir)[-1].name
    print(
        f"{task}: SIGKILL drawn for step {kill_at} (seed {KILL_SEED}), sent at step {reached}; "
        f"resuming from {resumed_from}"
    )
    assert process.returncode == -signal.SIGKILL
    assert not (output_dir / "results.json").exists()
    run_to_end(script_command(task, [*argv, "--resume_from_checkpoint", "latest"]), log)
    bitwise_equal(reference[task], output_dir)
    # The steps logged after the checkpoint and trained again are in metrics.jsonl once (issue 30).
    logged = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in logged if "loss" in record] == list(range(1, STEPS + 1))


@pytest.mark.slow
def test_sigterm_checkpoints_logs_the_resume_command_and_exits_75(corpus_files, reference, tmp_path):
    stop_at = random.Random(f"{KILL_SEED}-sigterm").randint(4, STEPS - 8)
    output_dir, log = tmp_path / "pretrain", tmp_path / "run.log"
    argv = [*task_argv("pretrain", corpus_files), *COMMON, "--output_dir", str(output_dir)]
    command = script_command("pretrain", argv)
    with (
        log.open("w") as out,
        bounded_popen(command, stdout=out, stderr=subprocess.STDOUT, env=ENV) as process,
    ):
        reached = wait_for_step(output_dir, stop_at, process, log)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=300)
    text = log.read_text()
    stopped = int(re.search(r"stopped after step (\d+)", text).group(1))
    print(f"SIGTERM drawn for step {stop_at}, sent at step {reached}, stopped after step {stopped}")
    assert process.returncode == EXIT_PREEMPTED, text[-3000:]
    assert list_checkpoints(output_dir)[-1].name == f"step_{stopped}" and stopped < STEPS
    assert last_step(output_dir) == stopped  # it finished the step it was in, and no more
    command = shlex.split(re.search(r"resume with: (.+)", text).group(1))
    assert command[-2:] == ["--resume_from_checkpoint", "latest"]
    run_to_end(command, log)
    bitwise_equal(reference["pretrain"], output_dir)


def torchrun(argv: list[str]) -> list[str]:
    return [
        *launch.torchrun(),
        str(REPO / "scripts" / "pretrain.py"),
        *argv,
    ]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigterm_to_one_ddp_process_stops_both_and_resumes_bitwise(corpus_files, tmp_path):
    """torchrun, 2 processes, gloo: the signal reaches rank 1 only; both stop after the same step."""
    argv = [*task_argv("pretrain", corpus_files), *COMMON, "--use_cpu", "true"]
    log = tmp_path / "run.log"
    run_to_end(torchrun([*argv, "--output_dir", str(tmp_path / "reference")]), log)
    output_dir = tmp_path / "stopped"
    stop_at = random.Random(f"{KILL_SEED}-ddp").randint(4, STEPS - 10)
    command = torchrun([*argv, "--output_dir", str(output_dir)])
    with (
        log.open("a") as out,
        bounded_popen(command, stdout=out, stderr=subprocess.STDOUT, env=ENV) as launcher,
    ):
        reached = wait_for_step(output_dir, stop_at, launcher, log)
        workers = psutil.Process(launcher.pid).children(recursive=True)
        rank_one = next(p for p in workers if p.environ().get("RANK") == "1")
        rank_one.send_signal(signal.SIGTERM)
        launcher.wait(timeout=300)
    text = log.read_text()
    stopped = int(re.search(r"stopped after step (\d+)", text).group(1))
    print(f"DDP: SIGTERM to rank 1 drawn for step {stop_at}, sent at step {reached}, stopped after {stopped}")
    assert launcher.returncode != 0 and f"exitcode  : {EXIT_PREEMPTED}" in text
    assert list_checkpoints(output_dir)[-1].name == f"step_{stopped}"
    assert sorted(p.name for p in list_checkpoints(output_dir)[-1].glob("random_states_*.pkl")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    command = re.search(r"resume with: (.+)", text).group(1)
    assert command.startswith("torchrun --nnodes 1 --nproc_per_node 2 ")
    run_to_end(torchrun([*argv, "--output_dir", str(output_dir), "--resume_from_checkpoint", "latest"]), log)
    bitwise_equal(tmp_path / "reference", output_dir)


def test_a_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    corpus_files, tmp_path, monkeypatch
):
    import tunekit.training.step

    original, calls = tunekit.training.step.summed_loss, []

    def diverging(*args):
        calls.append(1)
        loss, count = original(*args)
        return (loss * float("nan"), count) if len(calls) >= 5 else (loss, count)

    monkeypatch.setattr(tunekit.training.step, "summed_loss", diverging)
    output_dir = tmp_path / "run"
    argv = [*task_argv("pretrain", corpus_files), *COMMON, "--gradient_accumulation_steps", "1"]
    # Logging only at step 100: the checkpoint guard at step 6 is what catches step 5.
    argv += [
        "--max_steps",
        "8",
        "--save_steps",
        "2",
        "--logging_steps",
        "100",
        "--save_total_limit",
        "5",
        "--output_dir",
        str(output_dir),
    ]
    with pytest.raises(NonFiniteLoss, match="non-finite at step 5.*last good checkpoint is .*step_4"):
        run_pretraining(*parse_recipe(argv))
    assert [p.name for p in list_checkpoints(output_dir)] == ["step_2", "step_4"]
    assert not (output_dir / "model.safetensors").exists() and not (output_dir / "results.json").exists()
