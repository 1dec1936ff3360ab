"""The study runner on a shrunken grid: outputs, skipping finished cells, resuming a killed run."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from tests.tunekit.study.conftest import write_recipe
from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.study import Study, StudyArguments


def cells(study_dir: Path) -> list[tuple]:
    lines = (study_dir / "results.jsonl").read_text().splitlines()
    return [(row["arm"], row["budget"], row["seed"]) for row in map(json.loads, lines)]


@pytest.mark.slow
def test_study_writes_results_report_and_plot_then_skips_and_resumes(study_recipe, tmp_path, capsys):
    (args,) = parse_recipe([study_recipe], (StudyArguments,))
    Study(args).run()
    root = tmp_path / "study"
    assert set(cells(root)) == {
        ("transformer_pretrained", 8, 0),
        ("lstm_pretrained", 8, 0),
        ("transformer_pretrained", "all", 0),
        ("lstm_pretrained", "all", 0),
    }
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    assert {row["train_examples"] for row in rows} == {8, 64}
    assert all(0 <= row["test_accuracy"] <= 1 and row["train_flops"] > 0 for row in rows)
    report = (root / "report.md").read_text()
    assert "transformer_pretrained" in report and "lstm_pretrained" in report
    # Each pretraining is probed before fine-tuning, and the report says what each probe read.
    assert "`pretrain/transformer`: Before fine-tuning, a linear probe" in report
    assert "from the pretrained masked-LM encoder" in report
    assert "from the pretrained LSTM language model" in report
    assert (root / "pretrain" / "lstm" / "probes.json").is_file()
    assert (root / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pretrain_results = json.loads((root / "pretrain" / "transformer" / "results.json").read_text())

    # A second run finds every cell done and trains nothing, and ends naming what it wrote.
    stamps = {p: p.stat().st_mtime_ns for p in (root / "cells").rglob("results.json")}
    capsys.readouterr()
    Study(args).run()
    out = capsys.readouterr().out
    assert f"report: {root / 'report.md'}" in out and f"results: {root / 'results.jsonl'} (4 cells)" in out
    assert len(cells(root)) == 4
    assert stamps == {p: p.stat().st_mtime_ns for p in (root / "cells").rglob("results.json")}
    assert json.loads((root / "pretrain" / "transformer" / "results.json").read_text()) == pretrain_results

    # A changed pretraining recipe is refused before anything runs: the finished pretraining (and the
    # cells fine-tuned from it) must not stand in for one the study would now train differently.
    changed = dataclasses.replace(args, pretrain_overrides="--learning_rate 0.0123")
    with pytest.raises(
        TunekitError, match=r"pretrain/transformer was pretrained .*learning_rate \(.* -> 0\.0123\)"
    ):
        Study(changed).run()
    assert stamps == {p: p.stat().st_mtime_ns for p in (root / "cells").rglob("results.json")}
    assert json.loads((root / "pretrain" / "transformer" / "results.json").read_text()) == pretrain_results

    # --report_only rebuilds the same report, probes included, from what is on disk (only the
    # resolved study recipe it quotes differs).
    report = (root / "report.md").read_text()
    (root / "report.md").unlink()
    Study(dataclasses.replace(args, report_only=True)).run()
    rebuilt = (root / "report.md").read_text()
    assert rebuilt.replace("report_only: true", "report_only: false") == report

    # Killed before the last cell was recorded (and mid-way through writing its line): only it runs again.
    finished = cells(root)
    lines = (root / "results.jsonl").read_text().splitlines()
    (root / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    Study(args).run()
    assert len(cells(root)) == 4 and set(cells(root)) == set(finished)
    changed = [p for p, stamp in stamps.items() if p.stat().st_mtime_ns != stamp]
    assert len(changed) == 1


def test_study_arguments_are_validated():
    with pytest.raises(TunekitError, match="arms: unknown"):
        StudyArguments(arms=["gru_scratch"])
    with pytest.raises(TunekitError, match="budgets: 'many'"):
        StudyArguments(budgets=["many"])


@pytest.mark.slow
@pytest.mark.parametrize("rounded", [False, True], ids=["autocast", "rounded"])
def test_bf16_recurrence_arm_pretrains_and_fine_tunes_in_bf16(study_recipe, tmp_path, rounded):
    (args,) = parse_recipe(
        [
            study_recipe,
            "--arms=lstm_pretrained",
            "--budgets=8",
            "--lstm_bf16_recurrence=true",
            f"--lstm_bf16_rounded={rounded}",
            "--match_lstm_pretraining_tokens=false",
        ],
        (StudyArguments,),
    )
    Study(args).run()
    root = tmp_path / "study"
    rows = {row["arm"]: row for row in map(json.loads, (root / "results.jsonl").read_text().splitlines())}
    bf16 = "no" if rounded else "bf16"  # rounded: no autocast, the recurrence rounds itself
    assert {arm: row["mixed_precision"] for arm, row in rows.items()} == {
        "lstm_pretrained": "no",
        "lstm_pretrained_bf16": bf16,
    }
    # The bf16 arm starts from its own language model, itself pretrained with a bf16 recurrence.
    # (fp32_recurrence, recurrence_rounding) of each language model
    bf16_recurrence = (True, "bfloat16") if rounded else (False, None)
    for name, precision, recurrence in (("lstm", "no", (True, None)), ("lstm_bf16", bf16, bf16_recurrence)):
        pretraining = root / "pretrain" / name
        assert json.loads((pretraining / "results.json").read_text())["mixed_precision"] == precision
        config = json.loads((pretraining / "config.json").read_text())
        assert (config["fp32_recurrence"], config["recurrence_rounding"]) == recurrence
    report = (root / "report.md").read_text()
    assert "## bf16 recurrence vs fp32" in report and "pretrained with its recurrence in bf16" in report
    assert ("rounded to bf16 after every operation" in report) is rounded
    assert ("under bf16 autocast with the LSTM recurrence" in report) is not rounded


def test_lora_and_decoder_arms_share_the_tokenizer_and_the_token_budget(study_recipe, tmp_path):
    stage = yaml.safe_load(
        Path(yaml.safe_load(Path(study_recipe).read_text())["lstm_pretrain_recipe"]).read_text()
    )
    labeled = yaml.safe_load(
        Path(yaml.safe_load(Path(study_recipe).read_text())["lstm_finetune_recipe"]).read_text()
    )
    recipes = {
        "decoder_pretrain_recipe": {**stage, "model_type": "llama", "objective": "clm"},
        "decoder_finetune_recipe": {**labeled, "model_type": "llama"},
        "transformer_lora_recipe": {**labeled, "model_type": "modernbert", "peft": {"r": 4}},
    }
    flags = [
        f"--{name}={write_recipe(tmp_path / f'{name}.yaml', values)}" for name, values in recipes.items()
    ]
    arms = ["--arms", "transformer_pretrained_lora", "decoder_pretrained", "decoder_scratch"]
    (args,) = parse_recipe([study_recipe, *flags, *arms, "--budgets=8"], (StudyArguments,))
    Study(args).run()
    root = tmp_path / "study"
    rows = {row["arm"]: row for row in map(json.loads, (root / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"transformer_pretrained_lora", "decoder_pretrained", "decoder_scratch"}
    lora = rows["transformer_pretrained_lora"]
    assert 0 < lora["trainable_parameters"] < lora["num_parameters"] / 2
    assert rows["decoder_scratch"]["trainable_parameters"] == rows["decoder_scratch"]["num_parameters"]
    decoder = json.loads((root / "pretrain" / "decoder" / "results.json").read_text())
    encoder = json.loads((root / "pretrain" / "transformer" / "results.json").read_text())
    assert decoder["task"] == "causal-lm" and decoder["tokens_seen"] >= encoder["tokens_seen"]
    shared = (root / "tokenizer" / "tokenizer.json").read_text()
    assert (root / "pretrain" / "decoder" / "tokenizer.json").read_text() == shared
    report = (root / "report.md").read_text()
    assert "causal-LM decoder" in report and "`decoder_pretrained`" in report


def test_cell_overrides_are_validated_and_compose_after_finetune_overrides():
    with pytest.raises(TunekitError, match="cell_overrides: 'transformer_pretrained 1000' is not"):
        StudyArguments(budgets=["1000"], cell_overrides=["transformer_pretrained 1000"])
    with pytest.raises(TunekitError, match="cell_overrides: .* names no arm and label budget"):
        StudyArguments(budgets=["1000"], cell_overrides=["transformer_scrach@100: --learning_rate 1e-3"])
    with pytest.raises(TunekitError, match="pretrain_budget_arms: \\['transformer_scratch'\\] are not"):
        StudyArguments(pretrain_budget_arms=["transformer_scratch"])
    # A recipe's entries for arms and budgets a run leaves out (--arms / --budgets pick a subset)
    # apply to no cell: the subset runs.
    subset = StudyArguments(
        arms=["transformer_scratch"],
        budgets=["1000"],
        pretrain_budgets=[10],
        pretrain_budget_arms=["transformer_pretrained"],
        cell_overrides=["transformer_pretrained@1000: --learning_rate 1e-3", "*@100: --eval_steps 10"],
    )
    assert [(cell.arm.name, cell.flags) for cell in Study(subset).grid()] == [("transformer_scratch", "")] * 3
    args = StudyArguments(
        budgets=["100", "1000"],
        finetune_overrides="--max_steps 5",
        cell_overrides=["transformer_pretrained@1000: --learning_rate 1e-3", "*@100: --eval_steps 10"],
    )
    study = Study(args)
    flags = {(cell.arm.name, cell.budget): cell.flags for cell in study.grid()}
    assert flags["transformer_pretrained", "1000"] == "--learning_rate 1e-3"
    assert flags["transformer_pretrained", "100"] == "--eval_steps 10"
    assert flags["lstm_scratch", "1000"] == ""
    # Split once into flags; a cell's parse puts the study's finetune_overrides before its own.
    (cell,) = [c for c in study.grid() if c.key == ("transformer_pretrained", "1000", 0, None)]
    assert args.finetune_argv == ("--max_steps", "5")
    assert [flag for override in cell.overrides for flag in override.argv] == ["--learning_rate", "1e-3"]


@pytest.mark.slow
def test_cell_overrides_reach_their_cells_and_rerun_them_when_changed(study_recipe, tmp_path):
    (args,) = parse_recipe(
        [study_recipe, "--cell_overrides", "transformer_pretrained@8: --max_steps 2"], (StudyArguments,)
    )
    Study(args).run()
    root = tmp_path / "study"
    rows = {(row["arm"], row["budget"]): row for row in map(json.loads, (root / "results.jsonl").open())}
    assert rows["transformer_pretrained", 8]["steps"] == 2
    assert rows["transformer_pretrained", 8]["cell_flags"] == "--max_steps 2"
    assert (
        rows["transformer_pretrained", "all"]["steps"] == 4 and "cell_flags" not in rows["lstm_pretrained", 8]
    )
    stamps = {p: p.stat().st_mtime_ns for p in (root / "cells").rglob("results.json")}

    # Changed flags: that cell runs again and replaces its row; the others are kept.
    Study(dataclasses.replace(args, cell_overrides=["transformer_pretrained@8: --max_steps 3"])).run()
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert [row["steps"] for row in rows if (row["arm"], row["budget"]) == ("transformer_pretrained", 8)] == [
        3
    ]
    changed = [
        p.relative_to(root / "cells").parts[:2] for p, t in stamps.items() if p.stat().st_mtime_ns != t
    ]
    assert changed == [("transformer_pretrained", "budget_8")]


@pytest.mark.slow
def test_a_diverged_cell_is_recorded_and_the_study_goes_on(study_recipe, tmp_path):
    # A learning rate of 1e30 overflows the weights within the first steps: a non-finite loss.
    flags = ["--cell_overrides", "transformer_pretrained@8: --learning_rate 1e30"]
    (args,) = parse_recipe([study_recipe, *flags], (StudyArguments,))
    Study(args).run()
    root = tmp_path / "study"
    assert ("transformer_pretrained", 8, 0) not in cells(root) and len(cells(root)) == 3
    (record,) = map(json.loads, (root / "diverged.jsonl").read_text().splitlines())
    assert (record["arm"], record["budget"], record["seed"]) == ("transformer_pretrained", 8, 0)
    assert record["cell_flags"] == "--learning_rate 1e30" and "non-finite" in record["error"]
    report = (root / "report.md").read_text()
    assert "Diverged, left out of the means: `transformer_pretrained` at 8 labels" in report

    # Resumed with the same flags: nothing is retried. With other flags, the cell runs again.
    Study(args).run()
    assert len((root / "diverged.jsonl").read_text().splitlines()) == 1 and len(cells(root)) == 3
    Study(dataclasses.replace(args, cell_overrides=["transformer_pretrained@8: --learning_rate 1e-3"])).run()
    assert ("transformer_pretrained", 8, 0) in cells(root) and len(cells(root)) == 4
