"""`--profile_dir`: the last warm-up steps of each leg under torch.profiler, never the timed window."""

import importlib.util

import pytest
import torch

from tests.conftest import REPO
from tunekit.benchmark.presets import TINY, Case
from tunekit.benchmark.profiling import (
    LegProfiles,
    kernel_microseconds,
    kernel_table,
    profiled_warmup,
    recorded_steps,
)


def train_steps(count: int) -> None:
    model = torch.nn.Linear(16, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(count):
        model(torch.randn(8, 16)).square().sum().backward()
        optimizer.step()
        optimizer.zero_grad()


def test_with_six_warm_up_steps_steps_three_to_five_are_recorded_and_written(tmp_path):
    path = tmp_path / "leg.txt"
    with profiled_warmup(path, warmup_steps=6, device=torch.device("cpu")):
        train_steps(4)
        assert not path.exists()  # the recording ends with step 5
        train_steps(6)
    text = path.read_text()
    assert "recorded optimizer steps: 3" in text and "wall time per step" in text
    assert "ops by self CPU time" in text and "device busy" not in text  # no GPU here
    assert "aten::addmm" in text  # the op table
    train_steps(1)  # the hook is gone: later steps neither fail nor write


def test_the_recording_is_the_last_warm_up_steps_but_one(tmp_path):
    path = tmp_path / "leg.txt"
    with profiled_warmup(path, warmup_steps=10, device=torch.device("cpu")):
        train_steps(8)
        assert not path.exists()  # steps 7, 8 and 9: after compilation and allocation settle
        train_steps(1)
        assert path.exists()  # written at the end of step 9; step 10 absorbs the writing
        train_steps(5)
    assert "recorded optimizer steps: 3" in path.read_text()


@pytest.mark.parametrize(("warmup", "recorded"), [(1, 0), (3, 0), (4, 1), (5, 2), (10, 3)])
def test_the_recording_ends_at_least_one_step_before_the_timed_window(warmup, recorded):
    assert recorded_steps(warmup) == recorded
    assert recorded == 0 or 2 + recorded < warmup


def test_a_leg_that_ends_before_the_recording_does_writes_nothing(tmp_path):
    with profiled_warmup(tmp_path / "short.txt", warmup_steps=6, device=torch.device("cpu")):
        train_steps(3)
    assert not (tmp_path / "short.txt").exists()
    train_steps(2)


def test_each_system_of_a_case_gets_its_own_file(tmp_path):
    case = Case("finetuning", TINY, 64, 8, "no", True, warmup_steps=6, steps=2)
    profiles = LegProfiles(tmp_path, case, torch.device("cpu"))
    with profiles("Trainer (pad to max)"):
        train_steps(6)
    assert [p.name for p in tmp_path.iterdir()] == ["finetuning_tiny_compiled_trainer_pad_to_max.txt"]
    nothing = LegProfiles(None, case, torch.device("cpu"))
    with nothing("tunekit"):
        train_steps(6)
    assert len(list(tmp_path.iterdir())) == 1


def test_the_benchmark_script_profiles_both_systems_of_the_smoke_preset(tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO / "scripts" / "benchmark.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--preset", "smoke", "--tasks", "pretraining", "--warmup_steps", "5", "--steps", "1"]
    argv += ["--output_dir", str(tmp_path), "--profile_dir", str(tmp_path / "profiles")]
    assert script.main(argv) == 0
    written = sorted(p.name for p in (tmp_path / "profiles").iterdir())
    assert written == ["pretraining_tiny_trainer.txt", "pretraining_tiny_tunekit.txt"]
    for name in written:
        assert "recorded optimizer steps: 2" in (tmp_path / "profiles" / name).read_text()


def test_a_profiler_that_cannot_start_leaves_the_leg_unprofiled(tmp_path, monkeypatch, caplog):
    def refuse(self):
        raise RuntimeError("CUPTI unavailable")

    monkeypatch.setattr(torch.profiler.profile, "start", refuse)
    with profiled_warmup(tmp_path / "leg.txt", warmup_steps=6, device=torch.device("cpu")):
        train_steps(8)
    assert not (tmp_path / "leg.txt").exists() and "CUPTI unavailable" in caplog.text


def test_device_busy_time_counts_each_kernel_once():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def row(device: DeviceType, microseconds: float, annotation: bool = False) -> SimpleNamespace:
        return SimpleNamespace(
            device_type=device, self_device_time_total=microseconds, is_user_annotation=annotation
        )

    # As in the H200's table: the step annotation's GPU copy, an op that repeats its kernel's time,
    # the kernel itself, and a CPU-only op.
    averages = [row(DeviceType.CUDA, 720.0, annotation=True), row(DeviceType.CPU, 44.0)]
    averages += [row(DeviceType.CUDA, 44.0), row(DeviceType.CUDA, 10.0), row(DeviceType.CPU, 0.0)]
    assert kernel_microseconds(averages) == 54.0


def test_gpu_profiles_hold_kernel_rows_only_per_step():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def row(key: str, device: DeviceType, microseconds: float, count: int, annotation=False):
        return SimpleNamespace(
            key=key,
            device_type=device,
            self_device_time_total=microseconds,
            count=count,
            is_user_annotation=annotation,
        )

    averages = [
        row("ProfilerStep#7", DeviceType.CUDA, 90_000.0, 3, annotation=True),
        row("aten::mm", DeviceType.CPU, 30_000.0, 30),  # an op: its kernel's time again
        row("sm90_xmma_gemm_bf16", DeviceType.CUDA, 30_000.0, 30),
        row("triton_poi_fused_add_0", DeviceType.CUDA, 3_000.0, 6),
        row("cudnn_sdpa_fprop", DeviceType.CUDA, 6_000.0, 3),
    ]
    lines = kernel_table(averages, steps=3, rows=2)
    assert lines[1].split() == ["10.000", "10.0", "sm90_xmma_gemm_bf16"]
    assert lines[2].split() == ["2.000", "1.0", "cudnn_sdpa_fprop"]
    assert lines[3].split() == ["1.000", "(1", "more", "kernels)"]
    assert not any("aten::" in line or "ProfilerStep" in line for line in lines)
