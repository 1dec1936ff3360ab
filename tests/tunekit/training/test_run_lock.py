"""One run per output directory (issue 30): a second run is refused naming the first one's pid, the
first runs on unharmed, and the lock of a run killed with SIGKILL does not block the next run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.processes import bounded_popen
from tunekit.cli import run_script
from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.training.run_lock import (
    LOCK_FILE,
    OutputDirLock,
    keep_output_dir,
    lock_output_dir,
    release_output_dir,
)
from tunekit.training.tasks import prepare_output_dir, run_pretraining

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
# A process that takes a run's lock and holds it, as a run would, until it is killed.
HOLD_LOCK = (
    "import sys, time; from tunekit.training.run_lock import OutputDirLock; "
    "OutputDirLock.acquire(sys.argv[1]); time.sleep(120)"
)


def wait_until(condition, process: subprocess.Popen, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def logged_steps(output_dir: Path) -> list[int]:
    path = output_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line)["step"] for line in lines if line.endswith("}") and '"loss"' in line]


def error_line(capsys: pytest.CaptureFixture) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_second_run_into_a_busy_output_dir_is_refused_and_the_first_runs_on(
    pretrain_argv, tmp_path, capsys
):
    output_dir = tmp_path / "pretrain"
    first_argv = [*pretrain_argv, "--max_steps", "300", "--seed", "5"]
    command = [sys.executable, str(REPO / "scripts" / "pretrain.py"), *first_argv]
    with (
        (tmp_path / "first.log").open("w") as log,
        bounded_popen(command, stdout=log, stderr=subprocess.STDOUT, env=ENV) as first,
    ):
        wait_until(lambda: logged_steps(output_dir), first, "the first run's first step")
        capsys.readouterr()
        status = run_script(run_pretraining, [*pretrain_argv, "--max_steps", "2", "--seed", "6"])
        line = error_line(capsys)
        assert status == 2
        assert line == (
            f"error: output_dir {output_dir} is in use by another run (pid {first.pid}); "
            "wait for it to end or choose another output_dir"
        )
        assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert logged_steps(output_dir) == list(range(1, 301))  # the first run's log alone
    assert yaml.safe_load((output_dir / "recipe.yaml").read_text())["seed"] == 5
    assert json.loads((output_dir / "results.json").read_text())["global_step"] == 300
    assert not (output_dir / LOCK_FILE).exists()  # released when the run ended


def test_the_lock_of_a_run_killed_with_sigkill_is_stale(pretrain_argv, tmp_path, capsys):
    output_dir = tmp_path / "pretrain"
    with bounded_popen([sys.executable, "-c", HOLD_LOCK, str(output_dir)], env=ENV) as holder:
        lock_file = output_dir / LOCK_FILE
        wait_until(lambda: lock_file.is_file() and lock_file.read_text().strip(), holder, "the lock")
        capsys.readouterr()
        assert run_script(run_pretraining, [*pretrain_argv, "--max_steps", "2"]) == 2
        assert f"(pid {holder.pid})" in error_line(capsys)
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=60) == -signal.SIGKILL
    assert lock_file.read_text().strip() == str(holder.pid)  # the dead run's file is still there

    results = run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "2"]))

    assert results["global_step"] == 2 and (output_dir / "results.json").is_file()
    assert not lock_file.exists()


def test_a_refused_run_leaves_no_directory_and_an_overwriting_one_no_lock(pretrain_argv, tmp_path):
    output_dir = tmp_path / "pretrain"
    with pytest.raises(TunekitError, match="mixed_precision=fp16 needs a GPU"):  # refused after locking
        run_pretraining(*parse_recipe([*pretrain_argv, "--mixed_precision", "fp16", "--use_cpu", "true"]))
    assert not output_dir.exists()
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("the user's")
    with pytest.raises(TunekitError, match="is not empty"):
        run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "1"]))
    assert sorted(p.name for p in output_dir.iterdir()) == ["notes.txt"]
    run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "1", "--overwrite_output_dir", "true"]))
    names = {p.name for p in output_dir.iterdir()}
    assert "results.json" in names and "notes.txt" not in names and LOCK_FILE not in names


class MainProcess:
    is_main_process = True
    num_processes = 1

    def wait_for_everyone(self) -> None:
        pass


def test_overwriting_the_output_dir_keeps_the_runs_lock(pretrain_argv, tmp_path):
    output_dir = tmp_path / "pretrain"
    (output_dir / "checkpoints").mkdir(parents=True)
    (output_dir / "results.json").write_text("{}")
    lock = OutputDirLock.acquire(output_dir)
    try:
        train_args = parse_recipe([*pretrain_argv, "--overwrite_output_dir", "true"])[2]
        prepare_output_dir(train_args, MainProcess())  # type: ignore[arg-type]
        assert [p.name for p in output_dir.iterdir()] == [LOCK_FILE]
        with pytest.raises(TunekitError, match=f"in use by another run \\(pid {os.getpid()}\\)"):
            OutputDirLock.acquire(output_dir)
    finally:
        lock.release()
    assert not (output_dir / LOCK_FILE).exists()


def test_a_study_into_a_directory_another_holds_is_refused_before_writing(tmp_path):
    from tunekit.study import Study, StudyArguments

    root = tmp_path / "study"
    lock = OutputDirLock.acquire(root)  # another open file: flock refuses even this same process
    try:
        with pytest.raises(
            TunekitError, match=f"output_dir {root} is in use by another run \\(pid {os.getpid()}\\)"
        ):
            Study(StudyArguments(output_dir=str(root))).run()
        assert [p.name for p in root.iterdir()] == [LOCK_FILE]
    finally:
        lock.release()
    assert not root.exists()


def test_a_refusal_before_the_first_step_takes_only_what_the_run_wrote(tmp_path):
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    (existing / "yours").mkdir(parents=True)
    (existing / "notes.txt").write_text("the user's")
    for output_dir in (fresh, existing):
        lock_output_dir(output_dir, MainProcess())  # type: ignore[arg-type]
        (output_dir / "tokenizer.json").write_text("{}")
        (output_dir / "checkpoints" / "step_1").mkdir(parents=True)
        if output_dir == existing:
            (existing / "yours" / "left alone.txt").write_text("")  # inside what it held: stays
        release_output_dir(output_dir, refused=True)
    assert not fresh.exists()
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt", "yours"]
    assert [p.name for p in (existing / "yours").iterdir()] == ["left alone.txt"]


def test_a_run_that_took_its_first_step_keeps_what_it_wrote_when_it_fails(tmp_path):
    output_dir = tmp_path / "run"
    lock_output_dir(output_dir, MainProcess())  # type: ignore[arg-type]
    (output_dir / "metrics.jsonl").write_text("{}")
    keep_output_dir(output_dir)
    (output_dir / "checkpoints").mkdir()
    release_output_dir(output_dir, refused=True)  # e.g. a non-finite loss at step 40
    assert sorted(p.name for p in output_dir.iterdir()) == ["checkpoints", "metrics.jsonl"]
