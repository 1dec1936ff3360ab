"""Stopping a run cleanly: on SIGTERM/SIGINT, and when the loss stops being a number.

SIGTERM (a scheduler's preemption notice) or SIGINT (Ctrl-C) during training only sets a flag;
the loop finishes the optimizer step it is in, writes a checkpoint, logs the command that resumes
it and exits with `EXIT_PREEMPTED`. A second SIGINT interrupts at once, and outside the training
loop (data preparation, final evaluation) both signals act at once, as by default (exit 143, or
KeyboardInterrupt). Under DDP the processes agree on the stop step: the flag is all-reduced (max)
at every step over a gloo group of CPU tensors, so a signal that reaches one process stops all of
them after the same step, and no GPU stream is synced for it. That costs one small host-side
collective per step, which only multi-process runs pay.

A non-finite loss is tracked on the device (no host sync per step) and read where the loop reads
the host anyway: at logging steps, before every checkpoint (so non-finite weights are never
checkpointed) and at the end. The run then stops with `EXIT_NON_FINITE_LOSS`, naming the step;
the last good checkpoint stays and no final model is written.
"""

import functools
import logging
import os
import shlex
import signal
import sys
import threading
from types import FrameType

import torch
import torch.distributed as dist
from accelerate import Accelerator

from tunekit.training.checkpoint import list_checkpoints

logger = logging.getLogger(__name__)

EXIT_PREEMPTED = 75  # EX_TEMPFAIL from sysexits.h: "try again later" -- resume it.
EXIT_NON_FINITE_LOSS = 3  # the recipe diverged; resuming as is would diverge again.

_resume_command: str | None = None


class RunStopped(Exception):
    """The run stopped on purpose; the scripts exit with `exit_code` after the logged message."""

    exit_code = 1


class Preempted(RunStopped):
    exit_code = EXIT_PREEMPTED


class NonFiniteLoss(RunStopped):
    exit_code = EXIT_NON_FINITE_LOSS


def set_resume_command(command: str | None) -> None:
    """Override the logged resume command (a study resumes by re-running its own command)."""
    global _resume_command
    _resume_command = command


def resume_command(argv: list[str] | None = None) -> str:
    """This process's command line with `--resume_from_checkpoint latest` (replacing any value given),
    under torchrun when the run was launched by it."""
    if _resume_command is not None:
        return _resume_command
    argv = list(sys.orig_argv if argv is None else argv)
    if "LOCAL_WORLD_SIZE" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ:
        script = next(i for i, arg in enumerate(argv) if arg.endswith(".py"))
        nodes = os.environ.get("GROUP_WORLD_SIZE", "1")
        launcher = ["torchrun", "--nnodes", nodes, "--nproc_per_node", os.environ["LOCAL_WORLD_SIZE"]]
        argv = launcher + argv[script:]
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume_from_checkpoint":
            skip = True
        elif not arg.startswith("--resume_from_checkpoint="):
            kept.append(arg)
    return shlex.join([*kept, "--resume_from_checkpoint", "latest"])


class StopSignals:
    """While entered, SIGTERM and SIGINT request a stop instead of killing the process.

    The scripts enter it around the whole run (`tunekit.cli.run_script`); a program that calls
    tunekit in-process keeps its own signal handling unless it enters `stop_signals` itself."""

    received: int | None = None  # shared by every guard in the process
    loops_running = 0  # outside a training loop there is nothing to finish: the signals act at once
    _previous: dict[int, object] = {}  # noqa: RUF012 - process-wide on purpose

    def __enter__(self) -> "StopSignals":
        StopSignals.received = None
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
        # A request belongs to the run it interrupted: a later run in this process starts clean.
        StopSignals.received = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if StopSignals.loops_running == 0 or (self.received is not None and signum == signal.SIGINT):
            # Not training (loading data, tokenizing, evaluating at the end), or a second Ctrl-C:
            # what the signal does by default, with `finally` blocks run.
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)
        if self.received is None:
            logger.warning(
                "received %s: finishing this optimizer step, then checkpointing and stopping",
                signal.Signals(signum).name,
            )
        StopSignals.received = signum


stop_signals = StopSignals()


@functools.cache
def _cpu_group() -> dist.ProcessGroup | None:
    """The group the stop vote runs in: the default one under gloo; under NCCL, which cannot reduce
    CPU tensors, one gloo side group per process (created once: a study trains many runs)."""
    return None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


def forget_cpu_group() -> None:
    """Before the process group is destroyed: a later group gets its own side group."""
    _cpu_group.cache_clear()


class RunGuard:
    """The loop's view of stop requests and of the loss's health."""

    def __init__(self, accelerator: Accelerator, output_dir: str) -> None:
        self.accelerator = accelerator
        self.output_dir = output_dir
        self._first_bad_step = torch.full((), -1, dtype=torch.long, device=accelerator.device)
        StopSignals.loops_running += 1
        self._group = _cpu_group() if accelerator.num_processes > 1 and dist.is_initialized() else None

    def _last_checkpoint(self) -> str | None:
        found = list_checkpoints(self.output_dir)
        return str(found[-1]) if found else None

    def watch_loss(self, step_loss: torch.Tensor, step: int) -> None:
        """Remember the first step whose loss was not finite, without reading it on the host."""
        bad = ~torch.isfinite(step_loss) & (self._first_bad_step < 0)
        self._first_bad_step = torch.where(bad, step, self._first_bad_step)

    def check_finite(self) -> None:
        """Raise NonFiniteLoss if any process saw a non-finite loss (a host sync: call it rarely)."""
        steps = self.accelerator.gather(self._first_bad_step.reshape(1))
        bad = [int(step) for step in steps.cpu() if step >= 0]
        if not bad:
            return
        last = self._last_checkpoint()
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was kept"
        message = (
            f"the training loss became non-finite at step {min(bad)}; stopped without saving a model "
            f"({kept}); lower learning_rate, raise warmup_ratio or set max_grad_norm"
        )
        if self.accelerator.is_main_process:
            logger.error(message)
        raise NonFiniteLoss(message)

    def close(self) -> None:
        """The loop is done: a last health check, and signals act at once again."""
        self.check_finite()
        StopSignals.loops_running -= 1

    def stop_requested(self) -> bool:
        """True on every process once any of them got SIGTERM/SIGINT."""
        requested = StopSignals.received is not None
        if self.accelerator.num_processes == 1 or not dist.is_initialized():
            return requested
        flag = torch.tensor([int(requested)], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())

    def preempted(self, step: int) -> Preempted:
        command = resume_command()
        if self.accelerator.is_main_process:
            logger.warning("stopped after step %d; checkpoint %s", step, self._last_checkpoint())
            logger.warning("resume with: %s", command)
        return Preempted(f"stopped after step {step}; resume with: {command}")
