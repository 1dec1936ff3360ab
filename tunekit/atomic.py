"""Writes that a crash, a kill or a full disk cannot leave half done.

A file is written next to its target under a temporary name, flushed to disk and renamed over
the target (`os.replace` is atomic on POSIX), so a reader sees the old file or the new one,
never a truncated one. Appends to a JSONL log write one whole line per call and fsync it, so at
most the last line can be cut short by a kill, and readers (`study.report.load_results`) skip
such a line with a warning.

Files come out with the mode a plain `open()` gives them (0666 less the umask), not the 0600 of
`mkstemp` or of safetensors' own writer: a run's outputs are read by other users and by servers.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def fsync_directory(directory: str | Path) -> None:
    """Make a rename or a new file in `directory` itself durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (changing it, even for an
    instant, would race with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The permission bits `open(path, "w")` gives a new file under the current umask."""
    return 0o666 & ~_current_umask()


def give_default_modes(root: str | Path) -> None:
    """Every file under `root` gets `default_file_mode()` (before it is renamed into place)."""
    mode = default_file_mode()
    for directory, _, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(directory, name), mode)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    target = Path(path)
    fd, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise
    fsync_directory(target.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) in one step: readers never see a partial file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def append_line(path: str | Path, line: str) -> None:
    """Append one complete line (flushed and fsynced) to a log such as a study's results.jsonl."""
    if "\n" in line:
        raise ValueError("append_line writes exactly one line")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def fsync_tree(root: str | Path) -> None:
    """Flush every file under `root` (and the directories) to disk before it is renamed into place."""
    for directory, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(directory, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_directory(directory)


@contextlib.contextmanager
def staged_files(target_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory inside `target_dir`; on success move each file written there
    into `target_dir` with an atomic rename. On an error nothing in `target_dir` changes.

    For the final model and tokenizer, which share their directory with checkpoints and logs, so the
    directory as a whole cannot be swapped: every file is then either complete or absent, and
    results.json, written after them, marks the set as done."""
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".staging-"))
    try:
        yield staging
        give_default_modes(staging)
        fsync_tree(staging)
        for source in sorted(staging.rglob("*")):
            if source.is_file():
                destination = target / source.relative_to(staging)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, destination)
        fsync_directory(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
