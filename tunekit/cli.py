"""Shared plumbing for the thin scripts: parse the recipe, set up logging, report errors in one line."""

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunekit.config import RECIPE_DATACLASSES, ModelArguments, parse_recipe
from tunekit.config.aliases import config_flag_given
from tunekit.errors import TunekitError
from tunekit.training.console import disable_tqdm_bars, is_launcher_main_process, quiet_expected_warnings
from tunekit.training.preemption import RunStopped, stop_signals
from tunekit.training.teardown import arm_exit_watchdog_if_distributed, end_run

logger = logging.getLogger(__name__)


def setup_logging() -> None:
    # Under torchrun / accelerate launch, info lines and progress bars come from the main process
    # only (RANK is set before the process starts); every process still warns.
    main_process = is_launcher_main_process()
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO if main_process else logging.WARNING,
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
        if not main_process:
            datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover - both are dependencies
        pass


def run_script(
    task: Callable[..., Any],
    argv: list[str] | None = None,
    default_recipe: str | None = None,
    dataclass_types: tuple[type, ...] = RECIPE_DATACLASSES,
) -> int:
    """`script.py [RECIPE] [--field value ...] [--debug]`: run `task` on the parsed recipe.

    A TunekitError becomes one line on stderr and exit status 2; `--debug` or TUNEKIT_DEBUG=1
    prints its traceback first. A run stopped by a signal or a non-finite loss exits with
    `preemption.EXIT_PREEMPTED` (75) or `EXIT_NON_FINITE_LOSS` (3); any other exception prints its
    traceback and returns 1. The process group, if any, is
    destroyed before it returns (`tunekit.training.teardown`); scripts end with `teardown.exit_process`.
    """
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TUNEKIT_DEBUG", "").lower() in ("1", "true", "yes")
    argv = [item for item in argv if item != "--debug"]
    recipe_given = (argv and not argv[0].startswith("-")) or config_flag_given(argv)
    use_default = bool(default_recipe) and not recipe_given
    if use_default and not {"-h", "--help"} & set(argv):
        argv = [str(default_recipe), *_default_recipe_adjustments(argv)]
    try:
        with stop_signals:  # SIGTERM/SIGINT: finish the step, checkpoint, exit EXIT_PREEMPTED
            configs = parse_recipe(argv, dataclass_types)
            if use_default:
                _check_default_recipe_model(configs, argv)
            with disable_tqdm_bars(configs):
                task(*configs)
        status = 0
    except TunekitError as error:
        if debug:
            traceback.print_exc()
        print("error: " + " ".join(str(error).split("\n")), file=sys.stderr)
        status = 2
    except RunStopped as stop:  # already logged, with the resume command
        status = stop.exit_code
    except Exception:  # a bug or a library's error: reported as Python would, then the same teardown
        traceback.print_exc()
        status = 1
    except BaseException:  # a signal outside the training loop: the process is on its way out
        arm_exit_watchdog_if_distributed()
        raise
    # Out of the `except` blocks, the run's frames (and the wrapped model they hold) are gone. Every
    # rank stops together when the run finished or was stopped (the stop vote), so only then is there a
    # final barrier; the watchdog bounds this teardown on any rank that still gets stuck in it.
    end_run(synchronize=status not in (1, 2))
    return status


def _default_recipe_adjustments(argv: list[str]) -> list[str]:
    """With the default recipe, choosing a model type means training that type from scratch."""
    flags = {item.split("=")[0] for item in argv}
    if "--model_type" in flags and "--model_name_or_path" not in flags:
        logger.info("--model_type given: training it from scratch instead of the default recipe's model")
        return [*argv, "--model_name_or_path", "none"]
    return argv


def _check_default_recipe_model(configs: tuple[Any, ...], argv: list[str]) -> None:
    """The default fine-tuning recipe starts from the tiny pretraining's output; say so when it is missing."""
    model_args = next((c for c in configs if isinstance(c, ModelArguments)), None)
    source = model_args.model_name_or_path if model_args else None
    given = any(item.split("=")[0] == "--model_name_or_path" for item in argv)
    if source and not given and not Path(source).exists():
        raise TunekitError(
            f"the default recipe fine-tunes {source}: run scripts/pretrain.py first, "
            "or pass --model_name_or_path / --model_type"
        )
