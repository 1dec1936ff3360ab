"""What a user sees on the console: a study's one progress bar, quiet cells, head swaps in one line.

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
import transformers
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from tunekit.lstm import LSTMConfig

logger = logging.getLogger(__name__)

HEAD_SWAP_MESSAGE = "new classification head; {head} weights dropped"
_reported_head_swaps: set[str] = set()


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
        # The loop's lines and each run's evaluations and end-of-run block (tunekit.run_summary).
        quieted = [logging.getLogger(name) for name in ("tunekit.train", "tunekit.run_summary")]
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


class _LoadReportFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


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


def _outside(keys: list[str], prefix: str) -> bool:
    return all(not key.startswith(prefix + ".") for key in keys)


def _pretraining_head(config: Any) -> str:
    """The head the checkpoint was pretrained with: its saved config still names its class."""
    if config.model_type == LSTMConfig.model_type:
        return "language-model decoder"
    if any(name.endswith("ForCausalLM") for name in config.architectures or []):
        return "causal-LM head"
    return "MLM decoder"


def from_pretrained_reporting_head_swap(auto_class: Any, source: str, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(source)`, with the expected head swap said in one line.

    transformers logs a LOAD REPORT table whenever keys are missing or unexpected. Loading a
    classifier from a pretraining checkpoint always drops the pretraining decoder and creates the
    classification head, so that table is expected: it is filtered out (on the modeling_utils
    logger, for this call only) and the load info checked instead. Keys inside the shared encoder that are
    missing or unexpected are not expected, and still warn."""
    modeling_logger = transformers.utils.logging.get_logger("transformers.modeling_utils")
    # A filter, not a level: transformers 5 checks this logger's level to decide other warnings.
    mute = _LoadReportFilter()
    modeling_logger.addFilter(mute)
    try:
        model, info = auto_class.from_pretrained(source, output_loading_info=True, **kwargs)
    finally:
        modeling_logger.removeFilter(mute)
    missing, unexpected = list(info["missing_keys"]), list(info["unexpected_keys"])
    mismatched = list(info.get("mismatched_keys", []))
    prefix = model.base_model_prefix
    if not (missing or unexpected or mismatched):
        return model
    if not mismatched and _outside(missing, prefix) and _outside(unexpected, prefix):
        if source not in _reported_head_swaps:  # once per source: a study loads it for every cell
            _reported_head_swaps.add(source)
            logger.info(HEAD_SWAP_MESSAGE.format(head=_pretraining_head(model.config)) + " (%s)", source)
        return model
    logger.warning(
        "loading %s: missing keys %s; unexpected keys %s; mismatched keys %s",
        source,
        missing or "none",
        unexpected or "none",
        mismatched or "none",
    )
    return model
