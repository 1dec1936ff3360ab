"""Checkpoints under `output_dir/checkpoints/step_N`: write, find, rotate.

`accelerator.save_state` stores model, optimizer, scheduler and every RNG; tunekit adds the loop's
position (`progress.json`) so a resumed run continues at the exact next batch, and the run's recipe
(`recipe.yaml`) so a resume can compare its own before writing anything, wherever the checkpoint
was copied to. A checkpoint is
written to a temporary directory, flushed to disk and renamed into place, so a crash or a full
disk mid-write never leaves a half checkpoint that `latest` would pick; old checkpoints are
renamed out of the `step_N` namespace before they are deleted, for the same reason.
"""

import errno
import json
import logging
import pickle
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator

from tunekit.atomic import atomic_write_text, fsync_directory, fsync_tree, give_default_modes
from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
RECIPE_FILE = "recipe.yaml"  # the resolved recipe, in the run's output_dir and in each checkpoint
BEST_STATE_FILE = "best_state.pt"
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
    total_steps: int | None = None  # the horizon the schedule was built for (unknown in older checkpoints)
    schedule_extensions: list[dict] = field(default_factory=list)  # tunekit.training.schedule_extension

    def save(self, directory: Path) -> None:
        atomic_write_text(directory / PROGRESS_FILE, json.dumps(asdict(self)))

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


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    progress: Progress,
    limit: int,
    best_state: dict[str, torch.Tensor] | None = None,
    recipe: dict[str, Any] | None = None,
) -> Path:
    """Write `step_N` (with the best weights so far, when kept, and the resolved `recipe`) and rotate;
    return its path."""
    final = checkpoints_dir(output_dir) / f"step_{progress.global_step}"
    staging = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(staging))
        if accelerator.is_main_process:
            if best_state is not None:
                torch.save(best_state, staging / BEST_STATE_FILE)
            if recipe is not None:
                (staging / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False))
            progress.save(staging)
            give_default_modes(staging)  # safetensors writes 0600
            fsync_tree(staging)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        previous = list_checkpoints(output_dir)
        kept = f"the previous checkpoint {previous[-1]} is intact" if previous else "no earlier checkpoint"
        reason = "disk full" if error.errno == errno.ENOSPC else error.strerror or str(error)
        raise TunekitError(f"could not write checkpoint {final} ({reason}); {kept}") from error
    if accelerator.is_main_process:
        if final.exists():
            _remove(final)
        staging.rename(final)
        fsync_directory(final.parent)
        for old in list_checkpoints(output_dir)[:-limit]:
            _remove(old)
    accelerator.wait_for_everyone()
    return final


def _remove(checkpoint: Path) -> None:
    """Rename, then delete: a crash mid-delete leaves a `.deleting` dir, never a gutted `step_N`."""
    doomed = checkpoint.with_name(checkpoint.name + ".deleting")
    shutil.rmtree(doomed, ignore_errors=True)
    checkpoint.rename(doomed)
    shutil.rmtree(doomed)


def _load_tensors_only(path: Path) -> object:
    """torch.load restricted to tensors and plain containers: a pickled object that would run code
    on load is refused with a TunekitError instead of being executed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise TunekitError(
            f"resume_from_checkpoint: refusing to load {path}: it holds more than tensors "
            f"({str(error).splitlines()[0]})"
        ) from None


def load_best_state(checkpoint: Path) -> dict[str, torch.Tensor] | None:
    path = checkpoint / BEST_STATE_FILE
    return _load_tensors_only(path) if path.is_file() else None  # type: ignore[return-value]


def refuse_unsafe_pickles(checkpoint: Path) -> None:
    """accelerate loads registered objects (`custom_checkpoint_*.pkl`: the LR scheduler) with
    weights_only=False; check first that they hold nothing but plain data. Its other files it
    already loads with weights_only=True."""
    for path in sorted(checkpoint.glob("custom_checkpoint_*.pkl")):
        _load_tensors_only(path)
