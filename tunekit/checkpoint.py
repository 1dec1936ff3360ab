"""Checkpoints under `output_dir/checkpoints/step_N`: write, find, rotate.

`accelerator.save_state` stores model, optimizer, scheduler and every RNG; tunekit adds the loop's
position (`progress.json`) so a resumed run continues at the exact next batch. A checkpoint is
written to a temporary directory and renamed into place, so a crash mid-write never leaves a
half checkpoint that `latest` would pick.
"""

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

from tunekit.errors import TunekitError

PROGRESS_FILE = "progress.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class Progress:
    """Where the loop is: everything besides tensors that a resume needs."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of the current epoch already consumed, per process
    tokens_seen: int = 0
    train_runtime: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None

    def save(self, directory: Path) -> None:
        (directory / PROGRESS_FILE).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, directory: Path) -> "Progress":
        return cls(**json.loads((directory / PROGRESS_FILE).read_text()))


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP_DIR.match(p.name)) and (p / PROGRESS_FILE).is_file()
    ]
    return [path for _, path in sorted(found)]


def resolve_checkpoint(value: str, output_dir: str | Path) -> Path:
    """`latest` -> newest complete checkpoint of this run; otherwise a checkpoint directory."""
    if value == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise TunekitError(
                f"resume_from_checkpoint=latest: no checkpoint under {checkpoints_dir(output_dir)}"
            )
        return found[-1]
    path = Path(value)
    if not (path / PROGRESS_FILE).is_file():
        raise TunekitError(
            f"resume_from_checkpoint: {value} is not a tunekit checkpoint (no {PROGRESS_FILE})"
        )
    return path


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, progress: Progress, limit: int) -> Path:
    final = checkpoints_dir(output_dir) / f"step_{progress.global_step}"
    staging = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    if accelerator.is_main_process:
        progress.save(staging)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        for old in list_checkpoints(output_dir)[:-limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final
