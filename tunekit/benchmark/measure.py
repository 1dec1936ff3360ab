"""How a benchmark leg is measured: a step-time window, token/example counts and peak memory.

The window opens when optimizer step W ends and closes when step W + N ends, so it holds exactly
N optimizer steps after W warm-up steps (compilation, allocator growth and the first data
batches fall before it). The host waits for the device only at those two boundaries, so the
pipelining of the steps in between is untouched.
"""

import contextlib
import ctypes
import gc
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StepWindow:
    """Counts optimizer steps; timestamps the end of step `warmup_steps` and of step warmup + steps."""

    warmup_steps: int
    steps: int
    device: torch.device
    completed: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    # Process CPU time over the same window: on a CPU shared with other work, it measures the
    # compute a leg used, which wall time (its share of the cores) does not.
    cpu_started_at: float = 0.0
    cpu_ended_at: float = 0.0

    def step_ended(self) -> None:
        self.completed += 1
        if self.completed == self.warmup_steps:
            synchronize(self.device)
            self.started_at, self.cpu_started_at = time.perf_counter(), time.process_time()
        elif self.completed == self.warmup_steps + self.steps:
            synchronize(self.device)
            self.ended_at, self.cpu_ended_at = time.perf_counter(), time.process_time()

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_ended_at - self.cpu_started_at

    @property
    def seconds(self) -> float:
        if self.started_at is None or self.ended_at is None:
            raise RuntimeError(
                f"the timed window did not complete: {self.completed} optimizer steps ran, "
                f"{self.warmup_steps + self.steps} were needed"
            )
        return self.ended_at - self.started_at


@contextmanager
def optimizer_steps_timed(window: StepWindow) -> Iterator[dict[str, Any]]:
    """Feed every optimizer step taken inside the block to `window`, through torch's global
    post-step hook, so a training loop is timed without changing it. Yields the settings of the
    optimizer that stepped (fused/foreach), so a comparison can give the other side the same."""
    seen: dict[str, Any] = {}

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not seen:
            seen.update(
                name=type(optimizer).__name__,
                fused=bool(optimizer.defaults.get("fused")),
                foreach=optimizer.defaults.get("foreach"),
            )
        window.step_ended()

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@dataclass
class BatchCounter:
    """Wraps a collator and records each batch's examples and non-padding tokens, in order.

    Counting by batch index (not by time) keeps the count exact under a prefetching dataloader.
    """

    collate: Callable[[list[dict]], dict[str, torch.Tensor]]
    examples: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collate(features)
        mask = batch.get("attention_mask")
        self.examples.append(len(batch["input_ids"]))
        self.tokens.append(int(mask.sum()) if mask is not None else batch["input_ids"].numel())
        return batch

    def window(self, warmup_steps: int, steps: int) -> tuple[int, int]:
        """(examples, tokens) of the batches of optimizer steps warmup + 1 … warmup + steps."""
        chosen = slice(warmup_steps, warmup_steps + steps)
        if len(self.examples) < warmup_steps + steps:
            raise RuntimeError(f"only {len(self.examples)} batches were collated")
        return sum(self.examples[chosen]), sum(self.tokens[chosen])


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _release_freed_memory() -> None:
    gc.collect()
    # glibc keeps freed heap pages; handing them back makes the next leg's baseline honest.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


MEMORY_NOTES = {
    "cuda": (
        "peak memory = torch.cuda.max_memory_allocated over the leg, less what was allocated when it "
        "started (nothing, unless an earlier leg left tensors alive)"
    ),
    "cpu": (
        "peak memory on CPU = highest resident set size sampled every 20 ms during the leg, minus the "
        "resident size at its start (after gc and malloc_trim); an approximation, since one process runs "
        "every leg and memory the allocator keeps from earlier legs is reused."
    ),
}


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float]]:
    """Yields a dict whose `mib` holds the leg's peak memory when the block exits."""
    result: dict[str, float] = {}
    _release_freed_memory()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        already = torch.cuda.memory_allocated(device)
        yield result
        result["mib"] = (torch.cuda.max_memory_allocated(device) - already) / 2**20
        return
    baseline, peak, done = _resident_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        result["mib"] = max(0, max(peak[0], _resident_bytes()) - baseline) / 2**20
