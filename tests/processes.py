"""Child processes a test starts, each in a session of its own, whose whole process group is killed
when the test is done with it (timeout, failure, or success): no rank, launcher or watchdog outlives
the test, even one whose parent has already exited."""

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psutil

# Generous for 2 shared CPU cores; the pytest-timeout in pyproject.toml bounds the whole test above it.
DEFAULT_TIMEOUT = 300


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child, its process group and every process it started, then reap the child.

    The group alone is not enough: torchrun starts each rank with `start_new_session=True`, so the
    ranks sit in groups of their own; they are found as descendants before anything is killed (a
    rank whose launcher is gone is reparented and could no longer be found)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with suppress(ProcessLookupError):  # the group is already empty
        os.killpg(process.pid, signal.SIGKILL)
    for descendant in descendants:
        with suppress(psutil.NoSuchProcess):
            descendant.kill()
    process.wait()
    psutil.wait_procs(descendants, timeout=30)


@contextmanager
def bounded_popen(command: Sequence[str], **options: Any) -> Iterator[subprocess.Popen]:
    """`subprocess.Popen` in a new session; on leaving the block, its whole group is killed."""
    process = subprocess.Popen(command, start_new_session=True, **options)
    try:
        yield process
    finally:
        kill_group(process)


def run_bounded(
    command: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
    capture_output: bool = False,
    check: bool = False,
    **options: Any,
) -> subprocess.CompletedProcess:
    """`subprocess.run` in a new session: past `timeout` seconds (or when the test fails meanwhile),
    the whole process group is killed and the test fails naming the command."""
    if capture_output:
        options |= {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with bounded_popen(command, **options) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.communicate()
            raise AssertionError(
                f"ran past {timeout:g} s, its process group killed: {' '.join(map(str, command))}"
            ) from None
    done = subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done
