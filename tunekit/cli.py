"""Shared plumbing for the thin scripts: parse the recipe, set up logging, report errors in one line."""

import logging
import sys
from collections.abc import Callable
from typing import Any

from tunekit.config import RECIPE_DATACLASSES, parse_recipe
from tunekit.console import quiet_expected_warnings
from tunekit.errors import TunekitError
from tunekit.preemption import RunStopped, stop_signals


def setup_logging() -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.INFO
    )
    # The libraries' per-call chatter (weight-loading bars, shard writes) drowns the training log.
    for name in ("transformers", "datasets", "accelerate"):
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_expected_warnings()
    try:
        import datasets
        import transformers

        transformers.utils.logging.set_verbosity_warning()
        transformers.utils.logging.disable_progress_bar()
        datasets.utils.logging.set_verbosity_warning()
    except ImportError:  # pragma: no cover - both are dependencies
        pass


def run_script(
    task: Callable[..., Any],
    argv: list[str] | None = None,
    default_recipe: str | None = None,
    dataclass_types: tuple[type, ...] = RECIPE_DATACLASSES,
) -> int:
    """`script.py [RECIPE] [--field value ...]`: run `task` on the parsed recipe.

    A TunekitError becomes one line on stderr and exit status 2; a run stopped by a signal or a
    non-finite loss exits with `preemption.EXIT_PREEMPTED` (75) or `EXIT_NON_FINITE_LOSS` (3).
    """
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if default_recipe and (not argv or argv[0].startswith("-")) and not {"-h", "--help"} & set(argv):
        argv.insert(0, default_recipe)
    try:
        with stop_signals:  # SIGTERM/SIGINT: finish the step, checkpoint, exit EXIT_PREEMPTED
            task(*parse_recipe(argv, dataclass_types))
    except TunekitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RunStopped as stop:  # already logged, with the resume command
        return stop.exit_code
    return 0
