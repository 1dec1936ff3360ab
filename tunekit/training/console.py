"""What a user sees on the console: a study's one progress bar, quiet cells, expected notes dropped.

A single run shows the datasets bars (tokenize, map) and the training bar. A study runs dozens of
runs, so inside `quiet_runs` those bars are off and `StudyProgress` shows one bar of cells with
an ETA, plus one line per finished cell.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import datasets
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_runs() -> Iterator[None]:
    """Hide datasets' tokenize/map bars for the duration (restoring the user's setting after)."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


class StudyProgress:
    """One bar of study cells (done/total, ETA) and one line per finished cell."""

    def __init__(self, total: int, done: int, enabled: bool = True) -> None:
        self.bar = tqdm(
            total=total,
            initial=done,
            desc="study cells",
            unit="cell",
            dynamic_ncols=True,
            disable=not enabled,
        )
        self.enabled = enabled

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """While a cell trains, the loop's info lines (best weights restored...) stay off the console:
        the cell's one line says how it went. Warnings still show."""
        # The loop's lines and each run's evaluations and end-of-run block (tunekit.training.summary).
        quieted = [logging.getLogger(name) for name in ("tunekit.training.loop", "tunekit.training.summary")]
        levels = [each.level for each in quieted]
        for each in quieted:
            each.setLevel(logging.WARNING)
        try:
            with logging_redirect_tqdm():  # log lines above the bar, not through it
                yield
        finally:
            for each, level in zip(quieted, levels, strict=True):
                each.setLevel(level)

    def cell_done(self, row: dict[str, Any]) -> None:
        self._finished(row, f"test accuracy {row['test_accuracy']:.4f} in {row['wall_time']:.0f} s")

    def cell_diverged(self, record: dict[str, Any]) -> None:
        self._finished(record, "diverged")

    def _finished(self, cell: dict[str, Any], outcome: str) -> None:
        if self.enabled:
            self.bar.write(f"cell {cell['arm']} / budget {cell['budget']} / seed {cell['seed']}: {outcome}")
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class _TiedWeightsNote(logging.Filter):
    """accelerate warns "Removed shared tensor {'decoder.weight'}" at every checkpoint of a model whose
    decoder is tied to its embeddings: safetensors stores a tied tensor once, and the tie is restored
    on load (the resume tests compare the weights bitwise). Expected, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


def is_launcher_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a process started alone (read from the launcher's
    RANK, before any process group exists)."""
    return os.environ.get("RANK", "0") == "0"


def disable_tqdm_bars(configs: tuple[Any, ...]) -> contextlib.AbstractContextManager:
    """`--disable_tqdm true` hides datasets' tokenize/map bars too, not only the training bar."""
    if any(getattr(config, "disable_tqdm", False) for config in configs):
        return quiet_runs()
    return contextlib.nullcontext()


def quiet_expected_warnings() -> None:
    """Called by the scripts' logging set-up."""
    logging.getLogger("accelerate.utils.other").addFilter(_TiedWeightsNote())
