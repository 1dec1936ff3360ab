"""Preemption's pieces without a run: exit codes, the resume command, what the signals do."""

import os
import signal

import pytest

from tunekit.cli import run_script
from tunekit.training.preemption import (
    EXIT_NON_FINITE_LOSS,
    EXIT_PREEMPTED,
    NonFiniteLoss,
    Preempted,
    resume_command,
)


def test_scripts_exit_with_the_documented_codes():
    def raiser(error):
        def task(*_):
            raise error

        return task

    assert run_script(raiser(Preempted("stopped")), ["--max_steps", "1"]) == EXIT_PREEMPTED == 75
    assert run_script(raiser(NonFiniteLoss("nan")), ["--max_steps", "1"]) == EXIT_NON_FINITE_LOSS == 3


def test_resume_command_replaces_a_given_checkpoint_and_names_torchrun(monkeypatch):
    argv = ["/venv/bin/python", "scripts/pretrain.py", "r.yaml", "--resume_from_checkpoint", "x/step_4"]
    assert (
        resume_command(argv) == "/venv/bin/python scripts/pretrain.py r.yaml --resume_from_checkpoint latest"
    )
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    worker = ["/venv/bin/python", "-u", "scripts/pretrain.py", "--seed=3"]
    assert resume_command(worker) == (
        "torchrun --nnodes 1 --nproc_per_node 2 scripts/pretrain.py --seed=3 --resume_from_checkpoint latest"
    )


def test_outside_the_training_loop_the_signals_act_at_once(monkeypatch):
    from tunekit.training.preemption import StopSignals, stop_signals

    monkeypatch.setattr(StopSignals, "loops_running", 0)
    with stop_signals, pytest.raises(SystemExit) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 128 + signal.SIGTERM
    monkeypatch.setattr(StopSignals, "loops_running", 1)
    with stop_signals:
        os.kill(os.getpid(), signal.SIGTERM)  # during training: only a request
        assert StopSignals.received == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # then Ctrl-C: the user does not want to wait
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) != stop_signals._handle  # restored on exit
    assert StopSignals.received is None  # and the request is not left for the next run
