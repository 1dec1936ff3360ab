"""`--debug_host_syncs`: what makes the host wait for the GPU inside training steps.

The loop is written so that the host reads device values only at logging steps (`TrainingRun.flush`);
anywhere else a read (`.item()`, a boolean index, a copy to the host, a blocking copy to the
device) stalls the host until the GPU drains its queue, and the GPU then idles while the host
prepares the next kernels. On CUDA, torch can warn at every such call
(`torch.cuda.set_sync_debug_mode`): this turns that on inside each optimizer step only, counts the
warnings by the Python line that caused them, and hands the counts to the next logging step's
record (`host_syncs`, `host_sync_sites` in metrics.jsonl). Known sources are listed in
tests/tunekit/training/test_host_syncs.py, whose CPU check finds the same reads without a GPU.
"""

import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

logger = logging.getLogger(__name__)

SYNC_WARNING = "synchronizing CUDA operation"  # torch's text: "called a synchronizing CUDA operation"
SITES_LOGGED = 5  # the most frequent source lines kept per record


class HostSyncWatch:
    """Counts the synchronizing CUDA calls inside `watching()` blocks, by source line."""

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.active = enabled and device.type == "cuda"
        if enabled and not self.active:
            logger.warning(
                "debug_host_syncs: only CUDA reports host-device syncs; nothing is counted on %s", device.type
            )
        self.sites: Counter[str] = Counter()

    def watching(self) -> AbstractContextManager[None]:
        """The block to watch; a plain no-op unless active, since the loop enters it every step."""
        return self._counting() if self.active else nullcontext()

    @contextmanager
    def _counting(self) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode("default")
        for warning in caught:
            if SYNC_WARNING in str(warning.message):
                self.sites[f"{warning.filename}:{warning.lineno}"] += 1
            else:  # not ours to swallow
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    def take(self) -> dict[str, Any]:
        """The counts since the last call, for a log record; nothing when inactive."""
        if not self.active:
            return {}
        sites, self.sites = self.sites, Counter()
        return {"host_syncs": sum(sites.values()), "host_sync_sites": dict(sites.most_common(SITES_LOGGED))}
