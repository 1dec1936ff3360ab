"""Experiment trackers through accelerate: `report_to` takes what accelerate supports.

`all` (every tracker accelerate finds installed), `none`, or a list: tensorboard, wandb, mlflow,
trackio, comet_ml, aim, clearml, dvclive, swanlab. Each run logs tunekit's metrics (the lines of
`metrics.jsonl`) at their steps, and the resolved recipe as the run's config. The tracker packages
are optional extras (`pip install 'tunekit[wandb]'`); naming one that is not installed is one line
saying which extra to install. tensorboard, the default, is used when installed and skipped
quietly otherwise, as before. Where each tracker writes is its own setting: WANDB_MODE=offline and
WANDB_DIR, MLFLOW_TRACKING_URI (e.g. a local `file:` store), TRACKIO_DIR.
"""

import importlib.util
from typing import Any

from tunekit.errors import TunekitError

# accelerate's tracker name -> (the module it imports, tunekit's extra that installs it)
TRACKERS = {
    "tensorboard": ("tensorboard", "study"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
    "trackio": ("trackio", "trackio"),
    "comet_ml": ("comet_ml", "comet"),
    "aim": ("aim", "aim"),
    "clearml": ("clearml", "clearml"),
    "dvclive": ("dvclive", "dvclive"),
    "swanlab": ("swanlab", "swanlab"),
}
CHOICES = ("all", "none", *TRACKERS)


def normalize_report_to(value: str | list[str]) -> list[str]:
    """`'wandb,mlflow'`, `['wandb', 'mlflow']` or `'none'` -> the list of names; unknown names refused."""
    items = [value] if isinstance(value, str) else list(value)
    names = [name.strip().lower() for item in items for name in str(item).split(",") if name.strip()]
    for name in names:
        if name not in CHOICES:
            raise TunekitError(f"report_to: unknown tracker {name!r}; choose from {', '.join(CHOICES)}")
    if len(names) > 1 and ({"none", "all"} & set(names)):
        raise TunekitError(
            f"report_to: {' and '.join(names)} disagree; give none, all, or a list of trackers"
        )
    return names or ["none"]


def installed(name: str) -> bool:
    return importlib.util.find_spec(TRACKERS[name][0]) is not None


def trackers_for(report_to: list[str]) -> list[str]:
    """The names to hand to `Accelerator(log_with=...)`; a named tracker that is not installed is refused."""
    if report_to == ["none"]:
        return []
    if report_to == ["all"]:
        return [name for name in TRACKERS if installed(name)]
    chosen = []
    for name in report_to:
        if installed(name):
            chosen.append(name)
        elif name != "tensorboard":  # the default: used when installed, as it always was
            module, extra = TRACKERS[name]
            raise TunekitError(
                f"report_to={name}: the {module} package is not installed; pip install 'tunekit[{extra}]'"
            )
    return chosen


def tracker_config(recipe: dict[str, Any]) -> dict[str, Any]:
    """The resolved recipe as a tracker config: scalars as they are, lists and None as text
    (tensorboard's hparams take bool, str, int and float only)."""
    return {
        key: value if isinstance(value, bool | int | float | str) else str(value)
        for key, value in recipe.items()
    }
