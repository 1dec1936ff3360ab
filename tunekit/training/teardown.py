"""How a run's processes end: in a fixed order that cannot wait on a peer that has gone, and never
later than a bounded time after their work is done.

The order, on every rank (`release_training_state`, then `end_process_group`):

1. the accelerator drops what it prepared (the DDP/FSDP-wrapped model, optimizer, scheduler,
   dataloaders) and a garbage collection frees them, so the DDP reducer lets go of the process group
   while that group is still registered (its destructor then has nothing left to wait for);
2. a final barrier (after a finished or preempted run, where every rank got there together; never
   after an error, which may have reached one rank only);
3. `torch.distributed.destroy_process_group()`, once (accelerate's `end_training` would destroy it a
   second time only if it were still initialized; tunekit no longer calls it for that);
4. the process exits (`exit_process`).

Releasing the model after destroying the group is what hung CI: the last reference to the gloo group
was then the reducer's, freed during Python object teardown, and the group's destructor waited on a
mutex forever. That destructor runs with the GIL held, so no Python thread can rescue such a process;
the exit watchdog is therefore a separate tiny process (`ExitWatchdog`): armed when the work is saved,
it kills its rank with SIGKILL after `TUNEKIT_EXIT_TIMEOUT` seconds (default 120; 0 turns it off),
printing one line first. Killed that way, a rank ends with status -9 (137 in a shell); the run's
outputs were complete before the watchdog was armed. A process that exits (or disarms it) in time
ends the watchdog, which never outlives its rank by more than a second.
"""

import gc
import os
import subprocess
import sys

import torch.distributed as dist
from accelerate import Accelerator

EXIT_TIMEOUT_ENV = "TUNEKIT_EXIT_TIMEOUT"
DEFAULT_EXIT_TIMEOUT = 120.0

# Runs in `python -I -S` (no site, no tunekit import): nothing in it can block on the rank it watches.
# It polls the pipe whose write end only the rank holds: readable means the rank disarmed it or exited.
_WATCHER = """
import os, select, signal, sys, time
parent, rank, seconds, fd = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + seconds
while (left := deadline - time.monotonic()) > 0:
    if select.select([fd], [], [], min(left, 1.0))[0] or os.getppid() != parent:
        os._exit(0)
line = f"tunekit: rank {rank} (pid {parent}) still running {seconds:g} s after its work was saved; killing it"
os.write(2, (line + "\\n").encode())
os.kill(parent, signal.SIGKILL)
"""


def exit_timeout() -> float:
    """Seconds a rank may live after its work is saved (`TUNEKIT_EXIT_TIMEOUT`; 0: no limit)."""
    value = os.environ.get(EXIT_TIMEOUT_ENV, "")
    try:
        return float(value) if value.strip() else DEFAULT_EXIT_TIMEOUT
    except ValueError:
        return DEFAULT_EXIT_TIMEOUT


class ExitWatchdog:
    """Kills this process `seconds` after `arm` unless it exits or `disarm`s first."""

    def __init__(self) -> None:
        self._watcher: subprocess.Popen | None = None
        self._write_end: int | None = None

    @property
    def armed(self) -> bool:
        return self._watcher is not None

    def arm(self, seconds: float | None = None) -> None:
        """Start the countdown (no-op when already armed or when the timeout is 0)."""
        seconds = exit_timeout() if seconds is None else seconds
        if self.armed or seconds <= 0:
            return
        read_end, self._write_end = os.pipe()
        rank = os.environ.get("RANK", "0")
        try:
            self._watcher = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    _WATCHER,
                    str(os.getpid()),
                    rank,
                    str(seconds),
                    str(read_end),
                ],
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(read_end)

    def disarm(self) -> None:
        """Stop the countdown: closing the pipe wakes the watcher, which exits at once."""
        if self._watcher is None or self._write_end is None:
            return
        os.close(self._write_end)
        self._watcher.wait()
        self._watcher = self._write_end = None


exit_watchdog = ExitWatchdog()  # one per process: `exit_process` keeps it armed until the end


def release_training_state(accelerator: Accelerator) -> None:
    """Close the trackers and drop every reference the accelerator keeps to what it prepared, then
    collect: with the caller's own references gone, the DDP reducer (or FSDP state) is freed here, while
    the process group is still alive, instead of during interpreter teardown."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers = []
    accelerator.free_memory()  # empties _models, _optimizers, _schedulers, _dataloaders; gc.collect()
    accelerator._custom_objects.clear()


def end_process_group(synchronize: bool) -> None:
    """Free what is left, wait for every rank when `synchronize`, then destroy the process group (once).

    Call it after the run's frames are gone (tunekit.cli.run_script does), so no rank still holds a
    wrapped model. `synchronize` only where every rank is known to arrive: a barrier after an error
    that reached one rank would wait for a peer that is not coming."""
    from tunekit.training.preemption import forget_cpu_group  # the stop vote's side group dies with the world

    gc.collect()
    if not _distributed():
        return
    if synchronize:
        dist.barrier()
    forget_cpu_group()
    dist.destroy_process_group()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def arm_exit_watchdog_if_distributed() -> None:
    """A rank leaving through an exception nothing handles: bound its exit, which tears the group down."""
    if _distributed():
        exit_watchdog.arm()


def end_run(synchronize: bool) -> None:
    """`end_process_group` under the exit watchdog: a rank stuck in the barrier or in the group's
    destructor is killed instead of waiting forever. The watchdog is disarmed after, so an in-process
    caller (a test, a study) lives on; a script re-arms it in `exit_process`."""
    guard = _distributed() and not exit_watchdog.armed
    if guard:
        exit_watchdog.arm()
    try:
        end_process_group(synchronize)
    finally:
        if guard:
            exit_watchdog.disarm()


def exit_process(code: int) -> None:
    """End a script: arm the exit watchdog (interpreter teardown is bounded too) and exit with `code`."""
    exit_watchdog.arm()
    sys.exit(code)
