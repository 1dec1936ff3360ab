"""`--profile_dir`: a few warm-up steps of each leg under torch.profiler, never the timed window."""

import importlib.util

import pytest
import torch

from tests.conftest import REPO
from tunekit.benchmark.presets import TINY, Case
from tunekit.benchmark.profiling import LegProfiles, kernel_microseconds, profiled_warmup, recorded_steps


def train_steps(count: int) -> None:
    model = torch.nn.Linear(16, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(count):
        model(torch.randn(8, 16)).square().sum().backward()
        optimizer.step()
        optimizer.zero_grad()


def test_steps_three_to_five_of_the_warm_up_are_recorded_and_written(tmp_path):
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
