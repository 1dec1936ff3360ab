"""The smoke preset end to end through the script: both systems timed in one process, one table,
its JSON and Markdown files."""

import importlib.util
import json

import datasets
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO / "scripts" / "benchmark.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    output_dir = tmp_path_factory.mktemp("benchmark")
    datasets.enable_progress_bars()
    assert script.main(["--preset", "smoke", "--output_dir", str(output_dir), "--name", "smoke"]) == 0
    # It hides datasets' bars while it runs, and gives the caller its setting back.
    assert datasets.is_progress_bar_enabled()
    return output_dir


def test_smoke_table_has_both_systems_with_positive_throughput(smoke_run, capsys):
    payload = json.loads((smoke_run / "smoke.json").read_text())
    rows = payload["rows"]
    systems = {(row["task"], row["system"]) for row in rows}
    assert systems == {
        ("pretraining", "tunekit"),
        ("pretraining", "Trainer"),
        ("finetuning", "tunekit"),
        ("finetuning", "Trainer (pad to max)"),
        ("finetuning", "Trainer (group_by_length)"),
    }
    for row in rows:
        assert row["tokens_per_second"] > 0 and row["examples_per_second"] > 0 and row["seconds"] > 0
        assert row["mfu"] is None  # CPU: no peak FLOP/s
        assert row["cpu_seconds"] > 0 and set(row["cpu_ratios"]) == set(row["ratios"])
    assert any(note.startswith("MFU: no peak FLOP/s") for note in payload["notes"])


def test_smoke_ratios_are_against_the_trainer_rows_of_the_same_task(smoke_run):
    rows = json.loads((smoke_run / "smoke.json").read_text())["rows"]
    by_system = {(row["task"], row["system"]): row for row in rows}
    tunekit, trainer = by_system["pretraining", "tunekit"], by_system["pretraining", "Trainer"]
    assert tunekit["ratios"] == {
        "Trainer": pytest.approx(tunekit["tokens_per_second"] / trainer["tokens_per_second"])
    }
    finetuning = by_system["finetuning", "tunekit"]
    for reference in ("Trainer (pad to max)", "Trainer (group_by_length)"):
        expected = (
            finetuning["examples_per_second"] / by_system["finetuning", reference]["examples_per_second"]
        )
        assert finetuning["ratios"][reference] == pytest.approx(expected)
    # Packed blocks: every timed pretraining token is a real one, the same count on both sides.
    assert tunekit["tokens_per_second"] * tunekit["seconds"] == pytest.approx(2 * 8 * 32, rel=1e-3)
    assert trainer["tokens_per_second"] * trainer["seconds"] == pytest.approx(2 * 8 * 32, rel=1e-3)
    assert len({row["optimizer"] for row in rows}) == 1  # the same AdamW implementation everywhere


def test_smoke_markdown_holds_the_table_and_how_it_was_made(smoke_run):
    markdown = (smoke_run / "smoke.md").read_text()
    assert markdown.count("| pretraining |") == 2 and markdown.count("| finetuning |") == 3
    for key in ("command", "device", "versions", "wall time"):
        assert f"**{key}**" in markdown
