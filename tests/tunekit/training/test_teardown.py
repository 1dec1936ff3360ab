"""A rank that outlives its saved work is killed with one line; test processes never outlive a test."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO
from tests.processes import run_bounded
from tunekit.cli import run_script
from tunekit.config import parse_recipe
from tunekit.training.tasks import run_pretraining
from tunekit.training.teardown import end_run, exit_timeout, release_training_state

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return run_bounded(
        [sys.executable, "-c", code], timeout=120, capture_output=True, text=True, env=ENV | env
    )


def gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_the_exit_watchdog_kills_a_rank_stuck_with_the_gil_held_and_says_so_in_one_line():
    # ctypes.PyDLL keeps the GIL through the C call, as the DDP reducer's destructor does: no Python
    # thread could run now, the watchdog process still fires.
    done = python(
        "import ctypes\n"
        "from tunekit.training.teardown import exit_watchdog\n"
        "exit_watchdog.arm(1.0)\n"
        "ctypes.PyDLL(None).sleep(300)\n",
        RANK="1",
    )
    assert done.returncode == -9, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("tunekit: rank 1 (pid ")
    assert line.endswith("still running 1 s after its work was saved; killing it")


def test_a_disarmed_watchdog_lets_the_process_live_on():
    done = python(
        "import time\n"
        "from tunekit.training.teardown import exit_watchdog\n"
        "exit_watchdog.arm(1.0)\n"
        "exit_watchdog.disarm()\n"
        "time.sleep(3)\n"
        "print('alive', exit_watchdog.armed)\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "alive False\n", "")


def test_exit_process_exits_with_its_code_and_the_watchdog_does_not_outlive_it():
    done = python(
        "from tunekit.training.teardown import exit_process, exit_watchdog\n"
        "exit_watchdog.arm(300)\n"
        "print(exit_watchdog._watcher.pid, flush=True)\n"
        "exit_process(75)\n"
    )
    assert done.returncode == 75, done.stderr
    assert gone(int(done.stdout))


def test_the_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TUNEKIT_EXIT_TIMEOUT", "7.5")
    assert exit_timeout() == 7.5
    monkeypatch.setenv("TUNEKIT_EXIT_TIMEOUT", "0")
    assert exit_timeout() == 0
    monkeypatch.delenv("TUNEKIT_EXIT_TIMEOUT")
    assert exit_timeout() == 120


def test_ending_a_run_without_a_process_group_arms_nothing():
    from tunekit.training.teardown import exit_watchdog

    end_run(synchronize=True)
    assert not exit_watchdog.armed


# new_session: the grandchild leaves the child's process group, as torchrun's ranks do.
@pytest.mark.parametrize("new_session", [False, True], ids=["same-group", "own-session"])
def test_a_timed_out_child_is_killed_with_the_grandchild_it_started(tmp_path: Path, new_session: bool):
    pid_file = tmp_path / "grandchild.pid"
    spawner = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        f" start_new_session={new_session})\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()
    with pytest.raises(AssertionError, match="ran past 3 s, its process group killed"):
        run_bounded([sys.executable, "-c", spawner], timeout=3)
    assert time.monotonic() - started < 60
    assert gone(int(pid_file.read_text()))


def test_a_finished_run_leaves_the_accelerator_holding_nothing(pretrain_argv, monkeypatch):
    import tunekit.training.tasks

    released = []

    def recording(accelerator):
        release_training_state(accelerator)
        released.append(accelerator)

    monkeypatch.setattr(tunekit.training.tasks, "release_training_state", recording)
    run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "2"]))
    (accelerator,) = released
    assert accelerator._models == accelerator._optimizers == accelerator._schedulers == []
    assert accelerator._dataloaders == accelerator._custom_objects == accelerator.trackers == []


def test_an_unexpected_error_is_reported_like_python_and_exits_1(capsys):
    def broken(*_):
        raise RuntimeError("a bug")

    assert run_script(broken, ["--max_steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("RuntimeError: a bug")
