"""The pretraining-budget axis: its arithmetic (steps per budget, which rows the report keeps, gains
against the scratch twin with paired intervals, where the crossover is stated), then the runner on
the shrunken study (each pretraining runs once and serves its cells)."""

import dataclasses
import json
from pathlib import Path

import pytest

from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.study import Study, StudyArguments, budgets


def rows_for(gains_by_budget: dict[int, list[float]], scratch: list[float]) -> list[dict]:
    """Rows of one label budget (100): pretrained at each pretraining budget, and scratch."""
    rows = [
        {"arm": "transformer_scratch", "budget": 100, "seed": seed, "test_accuracy": accuracy}
        for seed, accuracy in enumerate(scratch)
    ]
    for pretrain_budget, accuracies in gains_by_budget.items():
        rows += [
            {
                "arm": "transformer_pretrained",
                "budget": 100,
                "seed": seed,
                "test_accuracy": accuracy,
                "pretrain_budget": pretrain_budget,
                "pretrain_tokens": pretrain_budget * 1000,
            }
            for seed, accuracy in enumerate(accuracies)
        ]
    return rows


def test_steps_for_a_budget_and_directories():
    assert budgets.steps_for(500, "steps", tokens_per_step=4096) == 500
    assert budgets.steps_for(10_000, "tokens", tokens_per_step=4096) == 3  # at least the budget
    assert budgets.axis([400, 200, 400]) == [200, 400] and budgets.axis([]) == [None]
    assert budgets.budget_dir(Path("s"), "lstm", 200, "steps") == Path("s/pretrain/lstm/steps_200")
    assert budgets.budget_dir(Path("s"), "lstm", None, "steps") == Path("s/pretrain/lstm")


def test_main_rows_keep_scratch_and_the_largest_budget():
    rows = rows_for({10: [0.5, 0.5], 20: [0.6, 0.6]}, scratch=[0.5, 0.5])
    kept = budgets.main_rows(rows)
    assert {(row["arm"], row.get("pretrain_budget")) for row in kept} == {
        ("transformer_scratch", None),
        ("transformer_pretrained", 20),
    }
    plain = [{"arm": "a", "budget": 1, "seed": 0, "test_accuracy": 0.5}]
    assert budgets.main_rows(plain) == plain


def test_gains_are_paired_and_the_crossover_is_the_first_budget_above_zero():
    scratch = [0.60, 0.62, 0.61]
    rows = rows_for({10: [0.58, 0.63, 0.60], 20: [0.66, 0.67, 0.67], 40: [0.70, 0.72, 0.71]}, scratch=scratch)
    gains = budgets.budget_gains(rows)
    assert [g.pretrain_budget for g in gains] == [10, 20, 40]
    assert [g.method for g in gains] == ["paired t"] * 3
    assert gains[1].difference == pytest.approx(0.0566667, abs=1e-6)
    assert gains[1].pretrain_tokens == 20_000
    assert [g.above_zero for g in gains] == [False, True, True]
    (sentence,) = budgets.crossover(gains, "steps")
    assert "first lies above zero at 20 steps (20,000 pretraining tokens): +5.7 ± " in sentence
    section = "\n".join(budgets.report_section(gains, "steps", "gain.png"))
    assert "| `transformer_pretrained` | 100 | 40 | 40,000 | +10.0 ± " in section


def test_crossover_not_reached_is_stated_with_the_largest_budget():
    gains = budgets.budget_gains(rows_for({10: [0.50, 0.60, 0.55]}, scratch=[0.55, 0.55, 0.56]))
    (sentence,) = budgets.crossover(gains, "tokens")
    assert "crossover not reached" in sentence and "10,000 tokens" in sentence
    assert "One budget measured: no curve" in sentence


def test_the_mean_gain_s_zero_crossing_is_placed_between_budgets_in_log_space():
    scratch = [0.60, 0.60, 0.60]
    # gains -4, -2, +2 points at 10, 40, 160: the sign changes between 40 and 160, halfway in log space
    rows = rows_for({10: [0.56] * 3, 40: [0.58] * 3, 160: [0.62] * 3}, scratch=scratch)
    (sentence,) = budgets.crossover(budgets.budget_gains(rows), "flops")
    assert "The mean gain turns positive between 40 and 160 flops (at ~80 flops" in sentence
    rows = rows_for({10: [0.56] * 3, 40: [0.58] * 3}, scratch=scratch)
    (sentence,) = budgets.crossover(budgets.budget_gains(rows), "flops")
    assert "The mean gain stays below zero from 10 to 40 flops." in sentence


def test_only_the_listed_arms_pretrainings_are_on_the_axis():
    assert budgets.budgets_of("lstm", [300, 100], []) == [100, 300]  # empty: every pretraining
    assert budgets.budgets_of("transformer", [300, 100], ["transformer_pretrained_lora"]) == [100, 300]
    assert budgets.budgets_of("lstm", [300, 100], ["transformer_pretrained"]) == [None]


@pytest.fixture
def pretrainings(monkeypatch) -> list[tuple[str, int]]:
    """(model_type, max_steps) of every pretraining the study runs, in order."""
    import tunekit.study.runner as runner

    calls, run_pretraining = [], runner.run_pretraining

    def counted(*run_args):
        calls.append((run_args[0].model_type, run_args[2].max_steps))
        return run_pretraining(*run_args)

    monkeypatch.setattr(runner, "run_pretraining", counted)
    return calls


@pytest.mark.slow
def test_pretraining_budget_axis_runs_each_pretraining_once_and_reports_the_gain(
    study_recipe, tmp_path, pretrainings
):
    calls = pretrainings
    (args,) = parse_recipe(
        [
            study_recipe,
            *("--arms", "transformer_pretrained", "transformer_scratch"),
            *("--budgets", "8", "16"),
            *("--pretrain_budgets", "2", "3"),
        ],
        (StudyArguments,),
    )
    Study(args).run()
    root = tmp_path / "study"
    # One pretraining per budget, each of exactly its length, shared by both label budgets.
    assert [steps for _, steps in calls] == [2, 3]
    assert sorted(p.parent.name for p in root.glob("pretrain/transformer/*/results.json")) == [
        "steps_2",
        "steps_3",
    ]
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    pretrained = [row for row in rows if row["arm"] == "transformer_pretrained"]
    assert sorted((row["budget"], row["pretrain_budget"]) for row in pretrained) == [
        (8, 2),
        (8, 3),
        (16, 2),
        (16, 3),
    ]
    assert {row["pretrain_tokens"] for row in pretrained} == {2 * 4 * 32, 3 * 4 * 32}
    # Scratch does not depend on pretraining: one cell per label budget.
    assert sorted(row["budget"] for row in rows if row["arm"] == "transformer_scratch") == [8, 16]
    report = (root / "report.md").read_text()
    assert "## Gain against pretraining budget" in report
    assert "no interval with one seed" in report  # one seed: no crossover can be claimed
    assert (root / "pretraining_gain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Re-running trains nothing; report_only rebuilds the same report.
    Study(args).run()
    assert [steps for _, steps in calls] == [2, 3] and len(
        (root / "results.jsonl").read_text().splitlines()
    ) == 6
    Study(dataclasses.replace(args, report_only=True)).run()
    assert "## Gain against pretraining budget" in (root / "report.md").read_text()


@pytest.mark.slow
def test_budget_axis_for_the_transformer_only_pretrains_the_lstm_once(study_recipe, tmp_path, pretrainings):
    calls = pretrainings
    arms = ("transformer_pretrained", "transformer_scratch", "lstm_pretrained")
    (args,) = parse_recipe([study_recipe, "--arms", *arms, "--budgets", "8"], (StudyArguments,))
    axis = {"pretrain_budgets": [2, 3], "pretrain_budget_arms": ["transformer_pretrained"]}
    Study(dataclasses.replace(args, **axis)).run()
    root = tmp_path / "study"
    # The transformer at both budgets; the LSTM LM once, token-matched to the longest of them.
    assert [steps for kind, steps in calls if kind != "lstm"] == [2, 3]
    assert [kind for kind, _ in calls].count("lstm") == 1
    assert (root / "pretrain" / "lstm" / "results.json").is_file()
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    axis = {row["arm"]: [] for row in rows}
    for row in rows:
        axis[row["arm"]].append(row.get("pretrain_budget"))
    assert sorted(axis["transformer_pretrained"]) == [2, 3] and axis["lstm_pretrained"] == [None]
    assert "## Gain against pretraining budget" in (root / "report.md").read_text()


def test_pretraining_budget_arguments_are_validated():
    with pytest.raises(TunekitError, match="pretrain_budgets"):
        StudyArguments(pretrain_budgets=[100, 0])
    with pytest.raises(TunekitError, match="pretrain_budget_unit: 'epochs'"):
        StudyArguments(pretrain_budgets=[100], pretrain_budget_unit="epochs")
    with pytest.raises(TunekitError, match="pretrain_budget_arms"):
        StudyArguments(pretrain_budgets=[100], pretrain_budget_arms=["transformer_scratch"])
