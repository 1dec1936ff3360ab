import gzip
import json
import lzma
import os
import sys

import pytest

from tests.conftest import REPO
from tests.processes import run_bounded
from tools import gpu_session
from tools.gpu_session import (
    PlanConfig,
    Step,
    compact_jsonl,
    pack,
    plan_steps,
    pretrain_steps,
    restore_previous,
    run_plan,
    run_step,
)


def test_a_step_over_its_cap_is_stopped_and_the_plan_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_session, "PACK_RESERVE_S", 0)
    monkeypatch.setattr(gpu_session, "MIN_STEP_S", 0.5)
    monkeypatch.setattr(gpu_session, "GRACE_S", 2)
    slow = Step("slow", [sys.executable, "-c", "import time; time.sleep(30)"], budget_s=1)
    failing = Step("failing", [sys.executable, "-c", "import sys; sys.exit(3)"], budget_s=10)
    report = Step("report", [sys.executable, "-c", "open('report.txt', 'w').write('ok')"], budget_s=10)
    monkeypatch.chdir(tmp_path)
    results = run_plan(
        [slow, failing], budget_s=20, run_dir=tmp_path / "run", finally_steps=[report], tag="phase1"
    )
    assert [(r.name, r.status, r.returncode) for r in results] == [
        ("slow", "timed_out", -15),
        ("failing", "failed", 3),
        ("report", "ok", 0),
    ]
    assert results[0].wall_s < 10
    assert (tmp_path / "report.txt").read_text() == "ok"
    summary = json.loads((tmp_path / "run" / "steps_phase1.json").read_text())
    assert [step["status"] for step in summary["steps"]] == ["timed_out", "failed", "ok"]
    assert (tmp_path / "run" / "logs" / "phase1" / "failing.log").is_file()  # a second call keeps these


def test_a_step_without_time_left_is_skipped(tmp_path):
    import time

    result = run_step(Step("late", ["true"], 100), deadline=time.monotonic() + 5, log_dir=tmp_path)
    assert result.status == "skipped" and result.returncode is None
    # A step that must leave time for the ones after it is skipped sooner.
    reserving = Step("reserving", ["true"], 100, reserve_s=60)
    assert run_step(reserving, deadline=time.monotonic() + 100, log_dir=tmp_path).status == "skipped"


def test_the_archive_is_cut_below_the_return_limit_and_restores(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_session, "PART_BYTES", 4096)
    run = tmp_path / "run"
    (run / "study" / "checkpoints").mkdir(parents=True)
    (run / "study" / "checkpoints" / "big.bin").write_bytes(os.urandom(50_000))
    (run / "study" / "results.jsonl").write_text('{"arm": "a"}\n')
    (run / "study" / "log.txt").write_bytes(os.urandom(10_000))
    (run / "study" / "model.safetensors").write_bytes(os.urandom(6_000))
    parts = pack(run, tmp_path / "out")
    assert [part.name for part in parts] == [
        *(f"gpu_run.tar.gz.part{i:02d}" for i in range(3)),
        "gpu_models.tar.gz.part00",
        "gpu_models.tar.gz.part01",
    ]
    assert all(part.stat().st_size <= 4096 for part in parts)
    restored = tmp_path / "elsewhere" / "run"
    assert restore_previous(tmp_path / "out", restored)
    assert (restored / "study" / "results.jsonl").read_text() == '{"arm": "a"}\n'
    for name in ("log.txt", "model.safetensors"):
        assert (restored / "study" / name).read_bytes() == (run / "study" / name).read_bytes()
    assert not (restored / "study" / "checkpoints").exists()  # checkpoints never travel back
    assert not restore_previous(tmp_path / "nothing", restored)


def test_weights_stay_behind_when_they_would_pass_the_return_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_session, "RETURN_BYTES", 20_000)
    run = tmp_path / "run"
    (run / "pretrain").mkdir(parents=True)
    (run / "pretrain" / "results.json").write_text("{}")
    (run / "pretrain" / "model.safetensors").write_bytes(os.urandom(30_000))
    parts = pack(run, tmp_path / "out")
    assert [part.name for part in parts] == ["gpu_run.tar.gz"]  # the results come back regardless
    assert not (tmp_path / "out" / "gpu_models.tar.gz").exists()


def test_compact_copy_keeps_text_and_label_and_balances_a_sorted_file(tmp_path):
    source = tmp_path / "train.jsonl.gz"
    with gzip.open(source, "wt") as handle:
        for i in range(100):
            handle.write(json.dumps({"text": f"review {i}", "label": int(i >= 50), "id": i}) + "\n")
    assert compact_jsonl(source, tmp_path / "slice.jsonl.xz", rows=10) == 10
    with lzma.open(tmp_path / "slice.jsonl.xz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert set(rows[0]) == {"text", "label"}
    assert sum(row["label"] for row in rows) == 5


def test_pretraining_is_sized_by_the_measured_tokens_per_second(tmp_path):
    config = PlanConfig(tmp_path, tmp_path, smoke=False, phase=1, pretrain_seconds=100)
    assert pretrain_steps(config, tokens_per_step=1000, default=77) == 77  # no benchmark yet
    (tmp_path / "benchmark").mkdir()
    rows = [
        {"task": "pretraining", "system": "tunekit", "model": "imdb-recipe", "tokens_per_second": 50_000.0},
        {"task": "pretraining", "system": "Trainer", "model": "imdb-recipe", "tokens_per_second": 90_000.0},
        {"task": "pretraining", "system": "tunekit", "model": "bert-base", "tokens_per_second": 70_000.0},
    ]
    (tmp_path / "benchmark" / "benchmark_eager.json").write_text(json.dumps({"rows": rows}))
    assert pretrain_steps(config, tokens_per_step=1000, default=77) == 5000


def test_phase_two_finishes_seed_zero_then_runs_the_launcher_checks_and_the_figure(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl.xz").touch()
    steps = plan_steps(PlanConfig(tmp_path, tmp_path, smoke=False, phase=2))[0]
    names = [step.name for step in steps]
    assert names[:4] == ["env", "study_seed0", "accelerate_fsdp", "fsdp_loads"]
    assert names[4:6] == ["accelerate_single_gpu", "sequence_length"]
    assert names[6:] == ["study", "benchmark_compiled", "lstm_bf16"]
    assert steps[1].reserve_s > 0  # seed 0 stops in time for the FSDP check


def test_phase_one_runs_seed_zero_of_every_cell_before_more_seeds(tmp_path):
    for split in ("train", "test", "unsup"):
        (tmp_path / f"{split}.jsonl.xz").touch()
    steps, _ = plan_steps(PlanConfig(tmp_path, tmp_path, smoke=False, phase=1))
    assert [step.name for step in steps] == ["env", "benchmark", "study_seed0", "study"]
    first_seed = steps[2].argv()
    assert first_seed[-2:] == ["--seeds", "0"] and "--seeds" not in steps[3].argv()
    pretraining = next(arg for arg in first_seed if arg.startswith("--pretrain_overrides="))
    assert "unsup.jsonl.xz" in pretraining and "--mixed_precision bf16" in " ".join(first_seed)


@pytest.mark.slow
def test_smoke_mode_runs_both_calls_on_cpu_and_the_second_continues_the_first(tmp_path):
    shared = os.environ.get("TUNEKIT_SHARED_DATA")
    if not shared:
        pytest.skip("TUNEKIT_SHARED_DATA is unset: the smoke run slices the local IMDb copy")
    env = {**os.environ, "SMOKE": "1", "PYTHON": sys.executable, "DATA_DIR": str(tmp_path / "data" / "imdb")}
    run = tmp_path / "run"

    def call(phase: int) -> dict[str, str]:
        # The second call runs in the first one's run directory, as on the machine it left warm.
        paths = {"RUN_DIR": str(run), "OUT": str(tmp_path / f"out{phase}"), "PREVIOUS_DIR": "none"}
        done = run_bounded(
            ["bash", "scripts/gpu_run.sh"],
            cwd=REPO,
            env={**env, **paths, "PHASE": str(phase)},
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert (tmp_path / f"out{phase}" / "gpu_run.tar.gz").is_file()
        steps = json.loads((run / f"steps_phase{phase}.json").read_text())["steps"]
        return {step["name"]: step["status"] for step in steps}

    ok = "ok"
    assert call(1) == {"env": ok, "benchmark": ok, "study_seed0": ok, "study": ok, "study_report": ok}
    cells = (run / "study" / "results.jsonl").read_text()
    assert len(cells.splitlines()) == 4 and (run / "study" / "report.md").is_file()
    assert call(2) == {
        "env": ok,
        "accelerate_single_gpu": ok,
        "sequence_length": ok,
        "study_seed0": ok,
        "study": ok,
        "study_report": ok,
    }
    # The second call found the first one's cells and had nothing left to train.
    assert (run / "study" / "results.jsonl").read_text() == cells
    assert (run / "sequence_length" / "sequence_length.png").is_file()
    assert (run / "logs" / "phase1" / "benchmark.log").is_file()  # the first call's logs are kept
