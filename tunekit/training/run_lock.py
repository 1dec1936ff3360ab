"""One run per output directory: a run holds `output_dir/.tunekit.lock` for as long as it lives.

The lock is `flock` on that file, so the kernel drops it when the holding process ends in any way,
kill -9 included: a lock file left behind by a dead run is stale by construction and the next run
simply takes it. The holder writes its pid into the file, for the message a second run gets.

In a multi-process run the main process takes the lock for all of them (they share the directory)
and tells the others whether it got it, so every process refuses together.

A run refused before its first step (a TunekitError: a checkpoint of another shape, a tokenizer
that does not fit the model) leaves the directory as it found it: what the run wrote there by then
(a trained tokenizer, recipe.yaml) goes with the lock. From the first step on, everything it wrote
stays (`keep_output_dir`), for a resume or a post-mortem.
"""

import contextlib
import fcntl
import functools
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from accelerate import Accelerator, PartialState
from accelerate.utils import broadcast_object_list

from tunekit.errors import TunekitError

__all__ = [
    "LOCK_FILE",
    "OutputDirLock",
    "empty_output_dir",
    "holds_output_dir_lock",
    "keep_output_dir",
    "lock_output_dir",
    "release_output_dir",
]

logger = logging.getLogger(__name__)

LOCK_FILE = ".tunekit.lock"
_held: dict[Path, "OutputDirLock"] = {}  # this process's locks, by resolved output dir
Run = TypeVar("Run", bound=Callable[..., Any])


@dataclass
class OutputDirLock:
    output_dir: Path
    fd: int
    created_dir: bool  # the run made the directory, so a run that fails leaves none behind
    found: frozenset[str] = frozenset()  # the names the directory held before the run
    keep: bool = False  # the run has started training: what it wrote stays, whatever happens next

    @property
    def path(self) -> Path:
        return self.output_dir / LOCK_FILE

    @classmethod
    def acquire(cls, output_dir: str | Path) -> "OutputDirLock":
        """Take the lock or raise TunekitError naming the holder's pid; OSError if it cannot be created."""
        directory = Path(output_dir)
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        found = frozenset(entry.name for entry in directory.iterdir()) - {LOCK_FILE}
        path = directory / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise TunekitError(
                    f"output_dir {directory} is in use by another run (pid {holder}); "
                    "wait for it to end or choose another output_dir"
                ) from None
            # A releasing holder unlinks the file after we opened it: our lock is then on a file no
            # one else will open, so start again on the path's current file.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(directory, fd, created, found)

    def release(self, refused: bool = False) -> None:
        """Unlink the file while still holding it (so no one can lock the old file), then let go; remove
        the directory too when this run created it and left nothing in it.

        `refused`: the run ended in a TunekitError; before its first step, what it wrote goes first."""
        if refused and not self.keep:
            with contextlib.suppress(OSError):  # the refusal's own line is what the user must see
                empty_output_dir(self.output_dir, keeping=self.found)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)
        if self.created_dir:
            with contextlib.suppress(OSError):  # not empty: the run's outputs stay
                self.output_dir.rmdir()


def empty_output_dir(output_dir: Path, keeping: frozenset[str] = frozenset()) -> None:
    """Remove every entry of `output_dir` but the names in `keeping` and the lock file (a run that
    holds it keeps it, on the same file)."""
    for entry in output_dir.iterdir():
        if entry.name in keeping or entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"


def lock_output_dir(output_dir: str | Path, accelerator: Accelerator | PartialState) -> None:
    """Lock `output_dir` for this run (main process), or raise TunekitError on every process.
    `accelerator`: the run's Accelerator, or a PartialState (a study, which makes none itself).

    A directory that cannot be created is left to `check_output_dir`, which names what is wrong."""
    refusal: str | None = None
    if accelerator.is_main_process:
        try:
            lock = OutputDirLock.acquire(output_dir)
            _held[lock.output_dir.resolve()] = lock
        except TunekitError as busy:
            refusal = str(busy)
        except OSError as error:
            logger.debug("output_dir %s not locked (%s)", output_dir, error)
    if accelerator.num_processes > 1:
        refusal = broadcast_object_list([refusal])[0]
    if refusal is not None:
        raise TunekitError(refusal)


def keep_output_dir(output_dir: str | Path) -> None:
    """The run takes its first step: from here on, nothing it writes is removed (main process; a
    no-op where this process holds no lock)."""
    lock = _held.get(Path(output_dir).resolve())
    if lock is not None:
        lock.keep = True


def release_output_dir(output_dir: str | Path, refused: bool = False) -> None:
    lock = _held.pop(Path(output_dir).resolve(), None)
    if lock is not None:
        lock.release(refused)


def holds_output_dir_lock(run: Run) -> Run:
    """For `run(model_args, data_args, train_args)`: whatever way it ends, the lock it took goes; a
    run refused before its first step takes what it wrote with it."""

    @functools.wraps(run)
    def locked(*configs: Any) -> Any:
        refused = False
        try:
            return run(*configs)
        except TunekitError:
            refused = True
            raise
        finally:
            release_output_dir(configs[-1].output_dir, refused)

    return locked  # type: ignore[return-value]
