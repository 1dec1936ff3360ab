"""Objectives side by side at equal compute (tunekit.study.objectives): the arms' pretrainings and
scratch twin, FLOPs budgets turned into steps, the gains and plot against FLOPs, and the shrunken
study comparing MLM and RTD at equal FLOPs."""

import json
import math

import pytest
from transformers import BertTokenizerFast

from tunekit.config import DataArguments, ModelArguments, parse_recipe
from tunekit.study import Study, StudyArguments, budgets
from tunekit.study.arms import arm_named, selectable
from tunekit.study.objectives import OBJECTIVE_ARMS, estimated_flops_per_token, steps_for_flops
from tunekit.study.plots import plot_pretraining_gain
from tunekit.study.report import pretraining_gain, summarize


def test_objective_arms_pretrain_their_own_encoder_and_share_one_scratch_twin():
    assert set(OBJECTIVE_ARMS) == {
        "transformer_pretrained_mlm40",
        "transformer_pretrained_rtd",
        "transformer_pretrained_dbow",
    }
    assert set(OBJECTIVE_ARMS) <= set(selectable())
    arms = [arm_named(name) for name in ("transformer_pretrained", *OBJECTIVE_ARMS)]
    assert [arm.pretraining.name for arm in arms] == [
        "transformer",
        "transformer_mlm40",
        "transformer_rtd",
        "transformer_dbow",
    ]
    assert {arm.scratch_twin for arm in arms} == {"transformer_scratch"}
    assert [dict(arm.pretraining.recipe_changes) for arm in arms] == [
        {},
        {"mlm_probability": 0.4},
        {"objective": "rtd"},
        {"objective": "dbow"},
    ]
    # The RTD encoder is saved without an LM head, and the dbow head never filled a [MASK]: only the
    # linear probe reads them.
    assert arms[1].pretraining.probe.word_probe
    assert not arms[2].pretraining.probe.word_probe and not arms[3].pretraining.probe.word_probe


def test_a_flops_budget_buys_fewer_steps_of_a_costlier_objective(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(250)]])
    )
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tmp_path / "tokenizer")
    sizes = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 300}
    cost = {
        name: estimated_flops_per_token(
            ModelArguments(**sizes, objective=objective),
            DataArguments(max_seq_length=32, mlm_probability=p),
            str(tmp_path / "tokenizer"),
        )
        for name, objective, p in (
            ("mlm15", None, 0.15),
            ("mlm40", None, 0.4),
            ("rtd", "rtd", 0.15),
            ("dbow", "dbow", 0.15),
        )
    }
    # The masked-only head runs on more tokens at 40 %; RTD adds a generator and a head on every token.
    assert cost["mlm15"] < cost["mlm40"] < cost["rtd"]
    # dbow runs the vocabulary head once per 32-token window, but its last layer on every token
    # (MLM-15's only on the masked ones): at this size that costs more than MLM-15's head.
    assert cost["dbow"] > cost["mlm15"]
    del cost["dbow"]
    budget = 10**9
    steps = {
        name: steps_for_flops(budget, per_token, tokens_per_step=128) for name, per_token in cost.items()
    }
    assert steps["mlm15"] > steps["mlm40"] > steps["rtd"]
    for name, per_token in cost.items():  # the fewest steps that spend at least the budget
        assert (steps[name] - 1) * per_token * 128 < budget <= steps[name] * per_token * 128


def objective_rows() -> list[dict]:
    """100 labels, 3 seeds: scratch, and MLM and RTD at two FLOPs budgets each."""
    rows = [
        {"arm": "transformer_scratch", "budget": 100, "seed": seed, "test_accuracy": 0.60 + 0.01 * seed}
        for seed in range(3)
    ]
    for arm, gain in (("transformer_pretrained", 0.0), ("transformer_pretrained_rtd", 0.05)):
        for pretrain_budget in (10**12, 2 * 10**12):
            rows += [
                {
                    "arm": arm,
                    "budget": 100,
                    "seed": seed,
                    "test_accuracy": 0.60
                    + 0.01 * seed
                    + gain * pretrain_budget / 10**12
                    + 0.002 * (seed - 1),
                    "pretrain_budget": pretrain_budget,
                    "pretrain_budget_unit": "flops",
                    "pretrain_tokens": pretrain_budget // (10**5 if arm.endswith("rtd") else 6 * 10**4),
                    "pretrain_flops": pretrain_budget * 1.01,
                }
                for seed in range(3)
            ]
    return rows


def test_objective_gains_are_against_the_shared_scratch_and_plotted_against_flops(tmp_path):
    rows = objective_rows()
    gains = budgets.budget_gains(rows)
    assert {(g.arm, g.pretrain_budget) for g in gains} == {
        (arm, b)
        for arm in ("transformer_pretrained", "transformer_pretrained_rtd")
        for b in (10**12, 2 * 10**12)
    }
    rtd = {g.pretrain_budget: g for g in gains if g.arm == "transformer_pretrained_rtd"}
    assert rtd[2 * 10**12].difference == pytest.approx(0.10) and rtd[
        2 * 10**12
    ].pretrain_flops == pytest.approx(2.02e12)
    section = "\n".join(budgets.report_section(gains, "flops", "pretraining_gain.png"))
    assert "pretraining FLOPs" in section and "2.02e+12" in section
    assert "![gain against pretraining FLOPs](pretraining_gain.png)" in section
    assert (
        "`transformer_pretrained_rtd` at 100 labels: the gain's 95% interval first lies above zero" in section
    )
    # The main report pairs each objective with the one scratch arm too.
    main = [row | {"test_f1": row["test_accuracy"]} for row in budgets.main_rows(rows)]
    compared = {(c.arm, c.baseline) for c in pretraining_gain(summarize(main))}
    assert ("transformer_pretrained_rtd", "transformer_scratch") in compared
    path = tmp_path / "gain.png"
    plot_pretraining_gain(path, gains, title="t", x_axis="flops")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_flops_unit_is_accepted():
    assert (
        StudyArguments(pretrain_budgets=[10**12], pretrain_budget_unit="flops").pretrain_budget_unit
        == "flops"
    )
    args = StudyArguments(
        arms=["transformer_pretrained_rtd", "transformer_pretrained_mlm40", "transformer_scratch"]
    )
    assert args.arms[0] == "transformer_pretrained_rtd"


@pytest.mark.slow
def test_objectives_pretrain_at_equal_flops_in_the_study(study_recipe, tmp_path):
    arms = ("transformer_pretrained", "transformer_pretrained_rtd", "transformer_scratch")
    budgets_flops = (50_000_000, 100_000_000)
    (args,) = parse_recipe(
        [
            study_recipe,
            *("--arms", *arms, "--budgets", "8", "--pretrain_budget_unit", "flops"),
            *("--pretrain_budgets", *map(str, budgets_flops)),
        ],
        (StudyArguments,),
    )
    Study(args).run()
    root = tmp_path / "study"
    spent = {}
    for name in ("transformer", "transformer_rtd"):
        for budget in budgets_flops:
            results = json.loads((root / "pretrain" / name / f"flops_{budget}" / "results.json").read_text())
            per_step = results["train_flops"] / results["global_step"]
            # The fewest steps that spend the budget (the estimate and the run count the same FLOPs,
            # up to the masked share the collator drew).
            assert results["train_flops"] == pytest.approx(budget, abs=per_step * 1.1)
            spent[name, budget] = results
    assert spent["transformer_rtd", budgets_flops[1]]["task"] == "replaced-token-detection"
    assert (
        root / "pretrain" / "transformer_rtd" / f"flops_{budgets_flops[1]}" / "generator" / "config.json"
    ).is_file()
    # RTD costs more per token, so the same FLOPs buy it fewer steps.
    assert (
        spent["transformer_rtd", budgets_flops[1]]["global_step"]
        < spent["transformer", budgets_flops[1]]["global_step"]
    )
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    rtd_rows = [row for row in rows if row["arm"] == "transformer_pretrained_rtd"]
    assert sorted(row["pretrain_budget"] for row in rtd_rows) == list(budgets_flops)
    assert all(not math.isnan(row["pretrain_flops"]) and row["pretrain_flops"] > 0 for row in rtd_rows)
    report = (root / "report.md").read_text()
    assert "pretraining FLOPs" in report and "`transformer_pretrained_rtd`" in report
    assert (root / "pretraining_gain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
