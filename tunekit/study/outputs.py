"""What a study writes when its cells are done: report.md, the plots and the printed summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from accelerate import PartialState

from tunekit.config import recipe_dict
from tunekit.errors import TunekitError
from tunekit.study import budgets
from tunekit.study.arms import architecture_of, is_bf16, is_lora, is_scratch, pretraining_of
from tunekit.study.plots import plot_learning_curve, plot_pretraining_gain
from tunekit.study.probes import describe_probes
from tunekit.study.publish import push_best_models
from tunekit.study.report import format_summary_table, machine_description, summarize, write_report

if TYPE_CHECKING:
    from tunekit.study.runner import Study


def write_study_outputs(study: Study, all_rows: list[dict], pretraining: dict[str, dict]) -> None:
    """report.md, learning_curve.png (and pretraining_gain.png with a budget axis), the summary."""
    rows = budgets.main_rows(all_rows)
    diverged = study.diverged()
    if not rows and diverged:
        raise TunekitError(
            f"no cell of {study.root} finished: {len(diverged)} diverged "
            f"(first: {diverged[0]['arm']} at {diverged[0]['budget']} labels; {study.diverged_path})"
        )
    gains = budgets.budget_gains(all_rows)
    per_arm = {arm: pretraining.get(pretraining_of(arm), {}) for arm in study.arms() if not is_scratch(arm)}
    transformer = pretraining.get("transformer", {})
    notes = []
    if (dropped := transformer.get("pretraining_texts_dropped_as_test_copies")) is not None:
        notes.append(
            f"{dropped} pretraining texts that also appear verbatim in the test split were dropped "
            "from the pretraining corpus before training."
        )
    for name, results in pretraining.items():
        notes += describe_probes(name, results)
    for record in diverged:
        flags = f" ({record['cell_flags']})" if record.get("cell_flags") else ""
        notes.append(
            f"Diverged, left out of the means: `{record['arm']}` at {record['budget']} labels, seed "
            f"{record['seed']}{flags}: {record['error']}"
        )
    if any(is_bf16(arm) for arm in study.arms()):
        how = (
            "with their LSTM recurrence computed in fp32 and rounded to bf16 after every operation "
            "(`lstm_bf16_rounded`: bf16 numerics, no autocast anywhere)"
            if study.args.lstm_bf16_rounded
            else "under bf16 autocast with the LSTM recurrence in bf16 too"
        )
        notes.append(
            f"`*_bf16` arms ran {how}, in their language-model pretraining as in fine-tuning; the other "
            "LSTM arms keep the recurrence in fp32."
        )
    resolved = yaml.safe_dump(recipe_dict(study.args), sort_keys=False)
    stages = [f"# {path}\n{Path(path).read_text()}" for path in recipes_used(study)]
    recipe_text = "\n".join([f"# the study, as resolved\n{resolved}", *stages])
    write_report(
        study.root / "report.md",
        rows,
        pretraining=per_arm,
        recipe_text=recipe_text,
        commands=study.commands(),
        machine=machine_description(),
        notes=notes,
        sections=budgets.report_section(gains, study.args.pretrain_budget_unit, "pretraining_gain.png"),
    )
    if gains:
        x_axis = "flops" if study.args.pretrain_budget_unit == "flops" else "tokens"
        title = f"Gain of pretraining against pretraining {'FLOPs' if x_axis == 'flops' else 'tokens'}"
        plot_pretraining_gain(study.root / "pretraining_gain.png", gains, title=title, x_axis=x_axis)
    plot_learning_curve(
        study.root / "learning_curve.png", rows, title="Test accuracy vs labels: pretrained vs scratch"
    )
    print(format_summary_table(summarize(rows)))
    for name, results in pretraining.items():
        print(
            f"pretraining {name}: {results.get('train_runtime', float('nan')):.0f} s, "
            f"{results.get('tokens_seen', 0):,} tokens, {results.get('num_parameters', 0):,} parameters"
        )
    print(f"report: {study.root / 'report.md'}  plot: {study.root / 'learning_curve.png'}")
    if study.args.push_to_hub and PartialState().is_main_process:
        for arm, url in push_best_models(study.args, rows).items():
            print(f"pushed best {arm}: {url}")


def recipes_used(study: Study) -> list[str]:
    """The stage recipes this study's arms ran, for the report."""
    names = [
        "transformer_pretrain_recipe",
        "transformer_finetune_recipe",
        "transformer_scratch_recipe",
        "lstm_pretrain_recipe",
        "lstm_finetune_recipe",
    ]
    if any(architecture_of(arm) == "decoder" for arm in study.arms()):
        names += ["decoder_pretrain_recipe", "decoder_finetune_recipe"]
    if any(is_lora(arm) for arm in study.arms()):
        names.append("transformer_lora_recipe")
    return [getattr(study.args, name) for name in names]
