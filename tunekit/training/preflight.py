"""Checks that run before any data is loaded or anything is written: model and tokenizer sources,
the output directory, the device's precision, and whether a resume matches its run.

Each failure is a TunekitError naming the field, so a mistake costs seconds, not a training run,
and never touches what is already on disk.
"""

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from huggingface_hub import is_offline_mode, try_to_load_from_cache
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import AutoConfig

from tunekit.config import recipe_dict, save_recipe
from tunekit.config.arguments import DataArguments, ModelArguments
from tunekit.config.training import TrainArguments
from tunekit.errors import TunekitError
from tunekit.hub.push import check_can_push, target_from_args
from tunekit.models.gradient_checkpointing import check_gradient_checkpointing
from tunekit.models.lstm import LSTMConfig
from tunekit.training.checkpoint import RECIPE_FILE, resolve_checkpoint
from tunekit.training.run_lock import LOCK_FILE, lock_output_dir
from tunekit.training.schedule_extension import check_horizon

logger = logging.getLogger(__name__)

# Fields a resumed run may change: they alter logging, speed or bookkeeping, not the trained weights.
RESUME_MAY_CHANGE = frozenset(
    {
        "resume_from_checkpoint",
        "output_dir",  # a checkpoint may be continued into a new output_dir
        "overwrite_output_dir",
        "disable_tqdm",
        "report_to",
        "logging_steps",
        "save_steps",
        "save_total_limit",
        "dataloader_num_workers",
        "preprocessing_num_workers",
        "overwrite_cache",
        "per_device_eval_batch_size",
        # A longer (or shorter) horizon extends the run; training.schedule_extension rebuilds its schedule.
        "max_steps",
        "num_train_epochs",
    }
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def check_run(
    model_args: ModelArguments, data_args: DataArguments, train_args: TrainArguments, accelerator: Accelerator
) -> None:
    """Everything that can be checked before loading data; raises TunekitError on the first problem."""
    model_config = None
    if model_args.model_name_or_path:
        model_config = check_model_source(model_args.model_name_or_path, model_args.trust_remote_code)
        check_model_type(model_args, model_config)
    if model_args.tokenizer_name_or_path:
        check_local_source(model_args.tokenizer_name_or_path, "tokenizer_name_or_path", _TOKENIZER_FILES)
    elif model_config is not None and Path(model_args.model_name_or_path).is_dir():
        check_local_source(model_args.model_name_or_path, "model_name_or_path", _TOKENIZER_FILES)
    check_positions(model_args, data_args, model_config)
    check_gradient_checkpointing(model_args, train_args)
    # Before the emptiness check: a directory another run is filling is refused naming that run.
    lock_output_dir(train_args.output_dir, accelerator)
    check_output_dir(train_args)
    check_mixed_precision(accelerator.mixed_precision, accelerator.device)
    if train_args.push_to_hub:  # the push comes after the whole run; what makes it fail, say now
        check_can_push(
            target_from_args(train_args, train_args.output_dir), named=bool(train_args.hub_model_id)
        )
    if train_args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(train_args.resume_from_checkpoint, train_args.output_dir)
        check_resume_recipe(
            recipe_of_run(checkpoint, train_args.output_dir), recipe_dict(model_args, data_args, train_args)
        )
        check_horizon(checkpoint, train_args.max_steps)


def _is_hub_id(value: str) -> bool:
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return not value.startswith((".", "~"))


def check_local_source(value: str, field: str, needs: tuple[str, ...]) -> None:
    """A saved directory holding one of `needs`, or a Hub name that can be fetched (or is cached)."""
    path = Path(value).expanduser()
    if not path.exists():
        if not _is_hub_id(value):
            raise TunekitError(f"{field}: no such directory {value}")
        if is_offline_mode() and try_to_load_from_cache(value, needs[0]) is None:
            raise TunekitError(
                f"{field}: no such directory {value}, and HF_HUB_OFFLINE=1 rules out fetching it "
                "from the Hub (it is not in the local cache)"
            )
        return
    if not path.is_dir():
        raise TunekitError(f"{field}: {value} is a file; expected a directory written by save_pretrained")
    if not any(path.iterdir()):
        raise TunekitError(f"{field}: {value} is an empty directory; expected a saved model or tokenizer")
    if not any((path / name).is_file() for name in needs):
        raise TunekitError(
            f"{field}: {value} has no {' or '.join(needs)}; expected a directory written by save_pretrained"
        )


def check_model_source(value: str, trust_remote_code: bool = False) -> Any:
    """The saved model's config (read early: its type and positions are checked before any data)."""
    check_local_source(value, "model_name_or_path", ("config.json",))
    try:
        return AutoConfig.from_pretrained(value, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise TunekitError(
            f"model_name_or_path: cannot load {value} ({str(error).splitlines()[0]})"
        ) from None


def check_model_type(model_args: ModelArguments, model_config: Any) -> None:
    expected = LSTMConfig.model_type if model_args.is_lstm else model_args.model_type
    if model_config.model_type != expected:
        raise TunekitError(
            f"model_name_or_path {model_args.model_name_or_path!r} holds a {model_config.model_type} model "
            f"but model_type is {model_args.model_type}"
        )


def check_positions(model_args: ModelArguments, data_args: DataArguments, model_config: Any) -> None:
    if model_args.is_lstm:
        return
    limit = getattr(model_config, "max_position_embeddings", None) if model_config else None
    source = f"the model at {model_args.model_name_or_path}" if limit else "max_position_embeddings"
    limit = limit or model_args.max_position_embeddings
    if data_args.max_seq_length > limit:
        raise TunekitError(
            f"max_seq_length={data_args.max_seq_length} is longer than {source} allows ({limit})"
        )


def check_model_fits(model: Any, tokenizer: Any, model_args: ModelArguments) -> None:
    """A tokenizer id past the embedding table would index out of range mid-training."""
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        field = "tokenizer_name_or_path" if model_args.tokenizer_name_or_path else "model_name_or_path"
        raise TunekitError(
            f"{field}: the tokenizer has {len(tokenizer)} tokens but the model embeds only {embeddings}; "
            "use the tokenizer the model was trained with"
        )


def check_output_dir(train_args: TrainArguments) -> None:
    """Writable, and either empty or explicitly to be resumed or replaced."""
    output_dir = Path(train_args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise TunekitError(f"output_dir {output_dir} is a file; expected a directory")
    existing = next((p for p in (output_dir, *output_dir.parents) if p.exists()), Path.cwd())
    if not existing.is_dir():
        raise TunekitError(f"output_dir {output_dir}: cannot create it, {existing} is a file")
    try:
        # Probing with a real file catches read-only mounts and full quotas that os.access misses.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise TunekitError(
            f"output_dir {output_dir}: cannot write to {existing} ({error.strerror})"
        ) from None
    holds_files = output_dir.is_dir() and any(p.name != LOCK_FILE for p in output_dir.iterdir())
    if holds_files and not train_args.resume_from_checkpoint:
        if not train_args.overwrite_output_dir:
            raise TunekitError(
                f"output_dir {output_dir} is not empty; pass --overwrite_output_dir true to replace it "
                "or --resume_from_checkpoint latest to continue it"
            )
        if not os.access(output_dir, os.W_OK | os.X_OK):
            raise TunekitError(f"output_dir {output_dir}: cannot replace it (no write permission)")


def check_mixed_precision(precision: str, device: torch.device) -> None:
    """accelerate accepts fp16 on a CPU and bf16 on any GPU; the first step would then fail or crawl."""
    if precision == "fp16" and device.type == "cpu":
        raise TunekitError("mixed_precision=fp16 needs a GPU; this run is on the CPU (use bf16 or no)")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TunekitError(
            f"mixed_precision=bf16: {torch.cuda.get_device_name(device)} has no bf16 (use fp16)"
        )


def recipe_of_run(checkpoint: Path, output_dir: str | Path) -> Path:
    """The recipe `checkpoint` was written with: the one it holds, wherever it was copied to; for a
    checkpoint older than that, its run's (`<run>/checkpoints/step_N` -> `<run>/recipe.yaml`), whichever
    output_dir the resume writes to; else the one in `output_dir`."""
    if (checkpoint / RECIPE_FILE).is_file():
        return checkpoint / RECIPE_FILE
    if checkpoint.parent.name == "checkpoints" and (checkpoint.parent.parent / RECIPE_FILE).is_file():
        return checkpoint.parent.parent / RECIPE_FILE
    return Path(output_dir) / RECIPE_FILE


def _comparable(value: Any) -> Any:
    """A recipe value as compared across runs: a path that exists, by where it points (a recipe given
    `../data/x.jsonl` and one given its absolute path name the same file)."""
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, str) and value and os.path.exists(value):
        return os.path.realpath(value)
    return value


def recipe_changes(
    saved_path: Path,
    current: dict[str, Any],
    ignore: frozenset[str],
    defaults: dict[str, Any] | None = None,
) -> str:
    """How `current` differs from the recipe saved at `saved_path` ("" where it does not), as
    `field (saved -> current), ...`, leaving out the fields in `ignore`. A field the saved recipe
    lacks (it predates the field) counts as `defaults[field]`, or as equal where no default is given."""
    try:
        saved = yaml.safe_load(saved_path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raise TunekitError(f"{saved_path} is unreadable") from None
    defaults = defaults or {}
    differing = []
    for name, value in current.items():
        if name in ignore or (name not in saved and name not in defaults):
            continue
        before = saved.get(name, defaults.get(name))
        if before != value and _comparable(before) != _comparable(value):
            differing.append(f"{name} ({before!r} -> {value!r})")
    return ", ".join(sorted(differing))


def check_resume_recipe(saved_path: Path, current: dict[str, Any]) -> None:
    """A resume continues bit-exactly only with the recipe it started with (`saved_path`)."""
    if not saved_path.is_file():
        return
    try:
        changes = recipe_changes(saved_path, current, RESUME_MAY_CHANGE)
    except TunekitError:
        raise TunekitError(f"resume_from_checkpoint: {saved_path} is unreadable") from None
    if changes:
        raise TunekitError(
            f"resume_from_checkpoint: the recipe differs from the run being resumed in {changes}; "
            "resume with the same values, or train from the start (no resume_from_checkpoint)"
        )


def save_run_recipe(output_dir: Path, accelerator: Accelerator, *configs: Any) -> None:
    """Written before training, so that a later resume can tell whether its recipe changed."""
    train_args = configs[-1]
    recipe_path = output_dir / RECIPE_FILE
    if accelerator.is_main_process and not (train_args.resume_from_checkpoint and recipe_path.is_file()):
        save_recipe(recipe_path, *configs)
