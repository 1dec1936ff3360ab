"""How the study builds each stage's run arguments: a stage recipe with the study's override flags,
parsed once into the typed recipe, then the per-run fields (output dir, seed, label budget,
pretraining length) replaced and re-validated."""

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accelerate import PartialState

from tunekit.config import DataArguments, ModelArguments, TrainArguments, parse_recipe

RunArgs = tuple[ModelArguments, DataArguments, TrainArguments]


def stage_args(recipe: str, flags: Sequence[str], **changes: Any) -> RunArgs:
    """A stage recipe with the study's override flags, then per-run fields replaced (and re-validated)."""
    model_args, data_args, train_args = parse_recipe([recipe, *flags])
    replaced = []
    for config in (model_args, data_args, train_args):
        names = {f.name for f in dataclasses.fields(config)}
        replaced.append(dataclasses.replace(config, **{k: v for k, v in changes.items() if k in names}))
    return tuple(replaced)  # type: ignore[return-value]


def examples_per_step(train_args: TrainArguments) -> int:
    """The global batch: per-device batch x accumulation x processes."""
    return (
        train_args.per_device_train_batch_size
        * train_args.gradient_accumulation_steps
        * PartialState().num_processes
    )


def match_tokens(run_args: RunArgs, transformer_dir: Path) -> RunArgs:
    """Equal-compute fairness starts with equal text: as many tokens as the transformer saw."""
    model_args, data_args, train_args = run_args
    seen = json.loads((transformer_dir / "results.json").read_text())["tokens_seen"]
    per_step = examples_per_step(train_args) * data_args.max_seq_length
    return model_args, data_args, dataclasses.replace(train_args, max_steps=math.ceil(seen / per_step))


def at_least_min_steps(run_args: RunArgs, budget: int, min_steps: int) -> RunArgs:
    """With 100 labels a few epochs are a handful of steps; small budgets get more epochs instead."""
    model_args, data_args, train_args = run_args
    steps = math.ceil(train_args.num_train_epochs * math.ceil(budget / examples_per_step(train_args)))
    if train_args.max_steps <= 0 and steps < min_steps:
        train_args = dataclasses.replace(train_args, max_steps=min_steps)
    return model_args, data_args, train_args
