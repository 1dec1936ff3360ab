import json
import logging

import pytest

from tunekit.errors import TunekitError
from tunekit.study.report import (
    bf16_effect,
    format_summary_table,
    load_results,
    pretraining_gain,
    summarize,
    write_report,
)

ARMS = {  # arm -> accuracy at budget 100 for seed 0; later seeds and budgets shift it
    "transformer_pretrained": 0.80,
    "transformer_scratch": 0.60,
    "lstm_pretrained": 0.70,
    "lstm_scratch": 0.62,
    "lstm_scratch_bf16": 0.58,
}


def row(arm: str, budget: int | str, seed: int, accuracy: float, **extra) -> dict:
    return {
        "arm": arm,
        "budget": budget,
        "seed": seed,
        "test_accuracy": accuracy,
        "test_f1": accuracy - 0.01,
        "steps": 70,
        "wall_time": 10.0,
        "num_parameters": 600_000,
        "train_flops": 1e12,
        **extra,
    }


def study_rows() -> list[dict]:
    rows = []
    for arm, base in ARMS.items():
        for step, budget in enumerate((100, 1000, "all")):
            extra = {"train_examples": 25_000} if budget == "all" else {}
            for seed in range(3):
                accuracy = min(base + 0.08 * step + 0.01 * seed - 0.005 * seed**2, 0.99)
                rows.append(row(arm, budget, seed, accuracy, **extra))
    return rows


def test_load_results_skips_a_truncated_last_line(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    rows = study_rows()[:3]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"arm": "lstm_scr')
    with caplog.at_level(logging.WARNING, logger="tunekit.study.report"):
        assert load_results(path) == rows
    assert "truncated" in caplog.text


def test_load_results_rejects_a_broken_middle_line_and_missing_keys(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"arm": \n' + json.dumps(study_rows()[0]) + "\n")
    with pytest.raises(TunekitError, match=":1:"):
        load_results(path)
    path.write_text(json.dumps({"arm": "x", "budget": 100, "seed": 0}) + "\n")
    with pytest.raises(TunekitError, match="test_accuracy"):
        load_results(path)


def test_summarize_groups_by_arm_and_budget():
    summaries = summarize(study_rows())
    assert len(summaries) == len(ARMS) * 3
    # budgets ascending with "all" last, then arms in the canonical order
    assert [s.budget for s in summaries[:: len(ARMS)]] == [100, 1000, "all"]
    assert [s.arm for s in summaries[: len(ARMS)]] == list(ARMS)
    first = summaries[0]
    assert (first.arm, first.budget, first.n, first.train_examples) == ("transformer_pretrained", 100, 3, 100)
    assert first.accuracy == pytest.approx({0: 0.80, 1: 0.805, 2: 0.80})
    assert first.accuracy_ci[0] == pytest.approx(0.805 / 3 + 1.6 / 3)
    assert first.total_wall_time == 30.0 and first.train_flops == 1e12 and first.num_parameters == 600_000
    assert summaries[-1].budget == "all" and summaries[-1].train_examples == 25_000


def test_summarize_keeps_the_later_row_of_a_rerun_cell():
    rows = [row("lstm_scratch", 100, 0, 0.5), row("lstm_scratch", "100", 0, 0.6)]
    (summary,) = summarize(rows)
    assert summary.budget == 100 and summary.accuracy == {0: 0.6}


def test_pretraining_gain_per_architecture_and_budget():
    gains = pretraining_gain(summarize(study_rows()))
    assert [(g.arm, g.baseline) for g in gains[:3]] == [("transformer_pretrained", "transformer_scratch")] * 3
    assert [g.budget for g in gains] == [100, 1000, "all"] * 2
    lstm_100 = gains[3]
    assert (lstm_100.arm, lstm_100.budget, lstm_100.method) == ("lstm_pretrained", 100, "paired t")
    # identical per-seed offsets: a gain of exactly 8 points with zero width
    assert lstm_100.difference == pytest.approx(0.08) and lstm_100.half_width == pytest.approx(0.0, abs=1e-12)
    bf16 = bf16_effect(summarize(study_rows()))
    assert [(c.arm, c.baseline) for c in bf16] == [("lstm_scratch_bf16", "lstm_scratch")] * 3
    assert bf16[0].difference == pytest.approx(-0.04)


def test_write_report_has_every_section(tmp_path):
    path = tmp_path / "report.md"
    pretraining = {"transformer_pretrained": {"wall_time": 3600.0, "train_flops": 5e15, "tokens_seen": 10**8}}
    write_report(
        path,
        study_rows(),
        pretraining=pretraining,
        recipe_text="learning_rate: 0.0003\n",
        commands=["python scripts/study.py recipes/imdb/study.yaml"],
        machine="1x H100 80GB",
        notes=["dropped 266 test texts from the pretraining corpus"],
    )
    text = path.read_text()
    assert text.startswith("# ")
    assert "**Machine:** 1x H100 80GB" in text
    for heading in (
        "### 100 labelled",
        "### 1,000 labelled",
        "### all (25,000) labelled",
        "## Gain of pretraining",
    ):
        assert heading in text
    assert "## Compute" in text and "## bf16 recurrence vs fp32" in text
    assert "| `transformer_pretrained` | 3 | 80.2 ± " in text
    assert "| transformer | 100 | 80.2 | 60.2 | +20.0 ± 0.0 | paired t |" in text
    assert "| `transformer_pretrained` | 60.0 min | 5.00e+15 | 100,000,000 | 90.0 s |" in text
    assert "- dropped 266 test texts from the pretraining corpus" in text
    assert "```bash\npython scripts/study.py recipes/imdb/study.yaml\n```" in text
    assert "```yaml\nlearning_rate: 0.0003\n```" in text


def test_write_report_without_bf16_or_notes_leaves_those_sections_out(tmp_path):
    path = tmp_path / "report.md"
    rows = [r for r in study_rows() if not r["arm"].endswith("_bf16")]
    write_report(path, rows, pretraining={}, recipe_text="", commands=[], machine="cpu", notes=[])
    text = path.read_text()
    assert "bf16" not in text and "## Notes" not in text and "## Gain of pretraining" in text


def test_format_summary_table_lists_every_cell():
    table = format_summary_table(summarize(study_rows()))
    lines = table.splitlines()
    assert len(lines) == 2 + len(ARMS) * 3
    assert lines[2].split()[:4] == ["transformer_pretrained", "100", "3", "80.2"]
    assert "all" in lines[-1]


def test_summary_columns_stay_aligned_with_a_long_arm_name():
    rows = [row("transformer_pretrained_lora", 100, seed, 0.9) for seed in range(3)]
    rows += [row("lstm_scratch", 100, seed, 0.6) for seed in range(3)]
    lines = format_summary_table(summarize(rows)).splitlines()
    budget_ends = {line.index("100") + 3 for line in lines[2:]}
    assert len(budget_ends) == 1 and lines[0].index("budget") + 6 == budget_ends.pop()
