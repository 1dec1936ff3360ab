"""The pretraining-budget axis's arithmetic: steps per budget, which rows the report keeps, gains
against the scratch twin with paired intervals, and where the crossover is stated."""

from pathlib import Path

import pytest

from tunekit.study import budgets


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


def test_only_the_listed_arms_pretrainings_are_on_the_axis():
    assert budgets.budgets_of("lstm", [300, 100], []) == [100, 300]  # empty: every pretraining
    assert budgets.budgets_of("transformer", [300, 100], ["transformer_pretrained_lora"]) == [100, 300]
    assert budgets.budgets_of("lstm", [300, 100], ["transformer_pretrained"]) == [None]
