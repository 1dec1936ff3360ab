"""Extending a finished or stopped run: `--resume_from_checkpoint latest --max_steps N` with a new N.

The learning-rate schedule is built for the run's horizon (warmup, then decay to 0 at the last
step), so a run resumed with another horizon cannot keep the old one: after the old last step it
would train at a learning rate of 0. The schedule is rebuilt for the new horizon instead, the run
says so in one line, and `results.json` records it (`schedule_extensions`). The checkpoint's
optimizer holds the old schedule's current rate, so the rate at the resumed step is set from the
new schedule; from there the scheduler steps as usual.
"""

import json
import logging
from pathlib import Path
from typing import Any

from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)


def refuse_empty_horizon(step: int, old_total: int | None, new_total: int) -> None:
    if new_total < step or (new_total == step and old_total not in (None, step)):
        raise TunekitError(
            f"max_steps={new_total}: the checkpoint is already at step {step}, so nothing is left to train; "
            "give a larger max_steps (or num_train_epochs) to extend the run"
        )


def check_horizon(checkpoint: Path, max_steps: int) -> None:
    """Before anything loads: a resume with `max_steps` at or below the checkpoint's step is refused."""
    progress = json.loads((checkpoint / "progress.json").read_text())
    if max_steps > 0:
        refuse_empty_horizon(progress["global_step"], progress.get("total_steps"), max_steps)


def rebuild_schedule_at(scheduler: Any, step: int, old_total: int, new_total: int) -> dict[str, Any]:
    """`scheduler` is already built for `new_total` steps; set the optimizer's rates to its value at
    `step` and return what changed, for results.json."""
    refuse_empty_horizon(step, old_total, new_total)
    groups = scheduler.optimizer.param_groups
    rates = [
        group["initial_lr"] * factor(step) for group, factor in zip(groups, scheduler.lr_lambdas, strict=True)
    ]
    for group, rate in zip(groups, rates, strict=True):
        group["lr"] = rate
    scheduler._last_lr = rates  # what get_last_lr() reports until the next step
    logger.info(
        "extending the run from %d to %d steps: the learning-rate schedule is rebuilt for %d steps "
        "and continues at step %d with learning rate %.3g",
        old_total,
        new_total,
        new_total,
        step,
        rates[0],
    )
    return {
        "at_step": step,
        "from_total_steps": old_total,
        "to_total_steps": new_total,
        "learning_rate": rates[0],
    }
