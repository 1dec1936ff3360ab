"""A study arm is one `Arm` in one registry: an arm registered there (and nowhere else) is run,
reported and plotted; a cell's overrides are parsed once, into its typed recipe."""

import json

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from tunekit.config import parse_recipe
from tunekit.study import Study, StudyArguments, runner, stages
from tunekit.study.arms import REGISTRY, Arm, PlotStyle, Pretraining, pretraining_named

TOY_COLOR = (0x12, 0x34, 0x56)  # a colour no registered arm uses: the plot can only get it from the Arm


@pytest.fixture
def toy_arms(monkeypatch) -> tuple[Arm, Arm]:
    """Two arms that exist only in the registry: a pretrained one with its own pretraining (the LSTM
    LM's recipe and probe under a new name) and its scratch twin. Their names follow no naming
    convention (no `_pretrained`, `_scratch`, known architecture): nothing can parse them."""
    lstm = pretraining_named("lstm")
    toy = Pretraining("toy", "lstm_pretrain_recipe", lstm.probe, "lstm_finetune_recipe")
    color = "#{:02x}{:02x}{:02x}".format(*TOY_COLOR)
    pretrained = Arm(
        "toy_warm",
        "lstm",
        "lstm_finetune_recipe",
        toy,
        PlotStyle(color, "-", "D"),
        scratch_twin="toy_cold",
    )
    scratch = Arm("toy_cold", "lstm", "lstm_finetune_recipe", None, PlotStyle("#654321", "--"))
    for arm in (pretrained, scratch):
        monkeypatch.setitem(REGISTRY, arm.name, arm)
    return pretrained, scratch


@pytest.mark.slow
def test_an_arm_registered_once_is_run_reported_and_plotted(toy_arms, study_recipe, tmp_path):
    (args,) = parse_recipe([study_recipe, "--arms", "toy_cold", "toy_warm", "--budgets=8"], (StudyArguments,))
    Study(args).run()
    root = tmp_path / "study"
    rows = {row["arm"]: row for row in map(json.loads, (root / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"toy_warm", "toy_cold"}
    # The runner pretrained under the toy pretraining's own name, probed it, and started the
    # pretrained arm from it; the scratch arm started from nothing.
    assert (root / "pretrain" / "toy" / "probes.json").is_file()
    assert not (root / "pretrain" / "lstm").exists() and not (root / "pretrain" / "transformer").exists()
    started_from = {
        arm: yaml.safe_load((root / "cells" / arm / "budget_8" / "seed_0" / "recipe.yaml").read_text())[
            "model_name_or_path"
        ]
        for arm in rows
    }
    assert started_from == {"toy_warm": str(root / "pretrain" / "toy"), "toy_cold": None}
    # The report orders, compares (pretrained minus its scratch twin) and describes it.
    report = (root / "report.md").read_text()
    assert report.index("`toy_warm`") < report.index("`toy_cold`")
    assert "## Gain of pretraining" in report and "| toy | 8 |" in report
    assert "from the pretrained LSTM language model" in report
    # The learning curve draws it in its registered colour.
    pixels = np.round(imread(root / "learning_curve.png")[..., :3] * 255).astype(int)
    assert (pixels == TOY_COLOR).all(axis=-1).any()


def test_a_bf16_variant_is_found_through_its_twin_and_shares_its_cell_overrides(monkeypatch):
    args = StudyArguments(
        arms=["lstm_pretrained"],
        budgets=["100"],
        seeds=[0],
        lstm_bf16_recurrence=True,
        cell_overrides=["lstm_pretrained@100: --learning_rate 1e-3"],
    )
    cells = {cell.arm.name: cell for cell in Study(args).grid()}
    assert list(cells) == ["lstm_pretrained", "lstm_pretrained_bf16"]
    assert cells["lstm_pretrained_bf16"].flags == cells["lstm_pretrained"].flags == "--learning_rate 1e-3"


def test_a_cell_parses_its_overrides_once_after_finetune_overrides(monkeypatch, tmp_path):
    args = StudyArguments(
        output_dir=str(tmp_path / "study"),
        arms=["transformer_scratch"],
        budgets=["100", "1000"],
        seeds=[0],
        stage_overrides="--eval_steps 7",
        finetune_overrides="--max_steps 5 --learning_rate 1e-4",
        cell_overrides=["transformer_scratch@1000: --learning_rate 1e-3", "*@1000: --warmup_ratio 0.2"],
    )
    parses, trained = [], []
    real_parse = stages.parse_recipe
    monkeypatch.setattr(stages, "parse_recipe", lambda argv: parses.append(argv) or real_parse(argv))
    results = dict.fromkeys(("test_accuracy", "test_f1", "global_step", "wall_time", "train_flops"), 1)
    results |= dict.fromkeys(("num_parameters", "trainable_parameters", "train_examples"), 1)
    results |= {"mixed_precision": "no"}
    monkeypatch.setattr(runner, "run_finetuning", lambda *run_args: trained.append(run_args) or results)
    study = Study(args)
    rows = [study.cell(cell) for cell in study.grid()]
    assert len(parses) == len(trained) == 2  # one parse per cell, nothing parsed again after it
    (_, _, at_100), (_, _, at_1000) = trained
    assert (at_100.max_steps, at_100.learning_rate, at_100.eval_steps) == (5, 1e-4, 7)
    assert (at_1000.learning_rate, at_1000.warmup_ratio, at_1000.seed) == (1e-3, 0.2, 0)
    assert at_1000.output_dir.endswith("cells/transformer_scratch/budget_1000/seed_0")
    assert "cell_flags" not in rows[0]
    assert rows[1]["cell_flags"] == "--learning_rate 1e-3 --warmup_ratio 0.2"
