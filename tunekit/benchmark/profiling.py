"""`scripts/benchmark.py --profile_dir DIR`: the last warm-up steps of every leg under torch.profiler.

The first GPU table put tunekit at 0.46-0.68x the Trainer, with an extra time per step that grew
with the number of sequences, not the model; telling host time from device time needs one profile
of each side on the device. This records it within the legs' warm-up, so it costs the timed window
nothing, and as late as it can, so that compilation, allocation and autotuning are over: steps
W - A .. W - 1 of W (A = min(3, W - 3)) are recorded, and the profile is written when the last of
them ends, one step before the window opens (that step absorbs the writing). Steps are counted
through torch's global optimizer post-step hook, as the window's are, so neither system changes.

Each leg writes DIR/<case>_<system>.txt: wall time per recorded step and, on a GPU, the device's
busy time per step and a table of kernel rows only (the kernels' own time, per step; op rows repeat
their kernels' time, which the first H200 profiles double-counted). On a CPU, where the ops are the
device's work, the table holds the ops by self CPU time. Wall time well above device time means
the GPU waited for the host.
"""

import logging
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile, schedule

from tunekit.benchmark.presets import Case

logger = logging.getLogger(__name__)

MAX_RECORDED_STEPS = 3
ROWS = 30


def recorded_steps(warmup_steps: int) -> int:
    """How many warm-up steps are profiled (0: too few warm-up steps to spare any)."""
    return max(0, min(MAX_RECORDED_STEPS, warmup_steps - 3))


@contextmanager
def profiled_warmup(path: Path | None, warmup_steps: int, device: torch.device) -> Iterator[None]:
    """Profile steps W - A .. W - 1 of the optimizer steps taken inside the block; write `path`."""
    active = recorded_steps(warmup_steps)
    if path is None or active == 0:
        yield
        return
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
    step_ends: list[float] = []
    last_step = warmup_steps - 1

    def recording_done(finished: profile) -> None:
        if len(step_ends) != last_step:  # the leg ended (or failed) before the recording did
            return
        try:
            write_profile(path, finished, step_ends[-active - 1 :], on_gpu)
        except Exception as error:  # a diagnostic must not cost the leg its measurement
            logger.warning("profile %s not written: %s", path, error)

    profiler = profile(
        activities=activities,
        # Skipped steps, then one step of the profiler's own warm-up, then the recorded ones.
        schedule=schedule(skip_first=last_step - active - 1, wait=0, warmup=1, active=active, repeat=1),
        on_trace_ready=recording_done,
    )

    def step_ended(*_: object) -> None:
        if len(step_ends) < last_step:
            if on_gpu:  # the wall time of a recorded step includes waiting for its kernels
                torch.cuda.synchronize(device)
            step_ends.append(time.perf_counter())
            profiler.step()  # the last call ends the recording and writes the profile
            if len(step_ends) == last_step:
                profiler.stop()

    try:
        profiler.start()
    except Exception as error:  # e.g. no CUPTI: the benchmark goes on unprofiled
        logger.warning("profiling %s skipped: %s", path, error)
        yield
        return
    handle = register_optimizer_step_post_hook(step_ended)
    try:
        yield
    finally:
        handle.remove()
        if len(step_ends) < last_step:  # the leg ended (or failed) before the recording did
            profiler.stop()


def kernel_microseconds(averages: list) -> float:
    """The device's busy time: the kernels' own rows only. An op's row repeats its kernels' time,
    and the GPU-side copy of the step annotation (ProfilerStep*) spans the whole step; counting
    every row put the H200's first profiles at 150-258 % of the wall time."""
    return sum(event.self_device_time_total for event in averages if _is_kernel(event))


def _is_kernel(event: object) -> bool:
    return event.device_type != DeviceType.CPU and not event.is_user_annotation


def kernel_table(averages: list, steps: int, rows: int = ROWS) -> list[str]:
    """The kernels' rows only, by their own device time per step."""
    kernels = sorted(
        (event for event in averages if _is_kernel(event)),
        key=lambda event: event.self_device_time_total,
        reverse=True,
    )
    lines = [f"{'ms/step':>9}  {'calls/step':>10}  kernel"]
    for event in kernels[:rows]:
        per_step_ms = event.self_device_time_total / 1e3 / steps
        lines.append(f"{per_step_ms:9.3f}  {event.count / steps:10.1f}  {event.key}")
    if len(kernels) > rows:
        rest = sum(event.self_device_time_total for event in kernels[rows:]) / 1e3 / steps
        lines.append(f"{rest:9.3f}  {'':10}  ({len(kernels) - rows} more kernels)")
    return lines


def write_profile(path: Path, finished: profile, step_ends: list[float], on_gpu: bool) -> None:
    """The per-step summary and the kernel (GPU) or op (CPU) table; `step_ends` holds the end of the
    step before the first recorded one, then the end of each recorded step."""
    steps = len(step_ends) - 1
    averages = finished.key_averages()
    wall_ms = (step_ends[-1] - step_ends[0]) * 1e3 / steps
    lines = [f"recorded optimizer steps: {steps}", f"wall time per step: {wall_ms:.1f} ms"]
    if on_gpu:
        device_ms = kernel_microseconds(averages) / 1e3 / steps
        lines.append(
            f"device busy per step (self time of its kernels): {device_ms:.1f} ms, "
            f"{device_ms / wall_ms:.0%} of the wall time"
        )
        lines += ["", "kernels by self device time", *kernel_table(averages, steps)]
    else:
        title = "ops by self CPU time (a CPU's ops are its kernels)"
        lines += ["", title, averages.table(sort_by="self_cpu_time_total", row_limit=ROWS)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class LegProfiles:
    """Where each leg (system) of one case writes its profile; no directory: nothing is profiled."""

    directory: Path | None
    case: Case
    device: torch.device

    def __call__(self, system: str) -> AbstractContextManager[None]:
        if self.directory is None:
            return nullcontext()
        case = self.case
        parts = [case.task, case.encoder.name, *(["compiled"] if case.compile else []), system]
        name = re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_")
        return profiled_warmup(self.directory / f"{name}.txt", case.warmup_steps, self.device)
