"""A study pushes each arm's best cell (by validation accuracy) with a card linking to its report."""

import dataclasses
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, constants

from tests.fake_hub import USER
from tests.tunekit.hub.test_push import hub  # noqa: F401  (fixture)
from tunekit.cli import run_script
from tunekit.config import parse_recipe
from tunekit.study import Study, StudyArguments
from tunekit.study.publish import best_cells


def test_best_cell_is_chosen_on_validation_never_test():
    rows = [
        {"arm": "a", "budget": 8, "seed": 0, "eval_accuracy": 0.6, "test_accuracy": 0.9},
        {"arm": "a", "budget": 8, "seed": 1, "eval_accuracy": 0.7, "test_accuracy": 0.5},
        {"arm": "a", "budget": "all", "seed": 0, "eval_accuracy": 0.7, "test_accuracy": 0.8},
        {"arm": "b", "budget": 8, "seed": 0, "eval_accuracy": None, "test_accuracy": 0.9},
        {"arm": "b", "budget": 8, "seed": 1, "eval_accuracy": 0.5, "test_accuracy": 0.4},
    ]
    assert best_cells(rows) == {"a": rows[1], "b": rows[4]}


def test_a_study_pushes_the_best_model_of_each_arm(study_recipe, hub, tmp_path):  # noqa: F811
    (args,) = parse_recipe([study_recipe], (StudyArguments,))
    args = dataclasses.replace(
        args,
        arms=["transformer_scratch", "lstm_scratch"],
        budgets=["8"],
        seeds=[0, 1],
        push_to_hub=True,
        hub_model_id="tiny-study",
        hub_token="hf_study_secret",
    )
    rows = Study(args, command="python scripts/study.py --hub_token <hub_token>").run()
    best = best_cells(rows)
    root = tmp_path / "study"

    assert [commit["repo_id"] for commit in hub.commits] == [
        f"{USER}/tiny-study-transformer-scratch",
        f"{USER}/tiny-study-lstm-scratch",
    ]
    for commit, arm in zip(hub.commits, ["transformer_scratch", "lstm_scratch"], strict=True):
        files = commit["files"]
        assert {"README.md", "model.safetensors", "study_report.md", "learning_curve.png"} <= set(files)
        assert files["study_report.md"] == (root / "report.md").read_bytes()
        row = best[arm]
        cell = root / "cells" / arm / f"budget_{row['budget']}" / f"seed_{row['seed']}"
        assert files["model.safetensors"] == (cell / "model.safetensors").read_bytes()
        card = ModelCard(files["README.md"].decode())
        assert card.data.model_name == commit["repo_id"]
        assert "[study_report.md](study_report.md)" in card.text and f"seed {row['seed']}" in card.text
        assert "## Part of a study" in (cell / "README.md").read_text()  # the local card says it too
    assert "learning_curve.png" in hub.commits[0]["files"] and "lstm.py" in hub.commits[1]["files"]
    assert b"hf_study_secret" not in (root / "report.md").read_bytes()


@pytest.mark.parametrize(
    ("offline", "hub_model_id", "expected"),
    [
        (True, "tiny-study", "error: push_to_hub: offline mode is on (HF_HUB_OFFLINE=1)"),
        (
            False,
            "bad//id",
            "error: hub_model_id: 'bad//id-transformer-pretrained' is not a Hub repository id",
        ),
    ],
    ids=["offline", "malformed-hub-id"],
)
@pytest.mark.parametrize("earlier_study", [False, True], ids=["new-dir", "existing-dir"])
def test_a_study_that_could_not_push_is_refused_before_any_cell(
    study_recipe, monkeypatch, capsys, offline, hub_model_id, expected, earlier_study
):
    """The push comes after every cell; what would make it fail is one line before the first cell runs,
    and neither a new output_dir nor an earlier study's files are left changed."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)  # read once at import; tests run with it on
    monkeypatch.setenv("HF_TOKEN", "hf_a_token")  # no token would be refused too: this case is not that
    root = Path(parse_recipe([study_recipe], (StudyArguments,))[0].output_dir)
    if earlier_study:
        root.mkdir()
        (root / "results.jsonl").write_text('{"arm": "lstm_pretrained", "budget": 8, "seed": 0}\n')
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} if earlier_study else None

    def study(args: StudyArguments) -> None:
        Study(args, command="python scripts/study.py").run()

    argv = [study_recipe, "--push_to_hub", "true", "--hub_model_id", hub_model_id]
    assert run_script(study, argv, dataclass_types=(StudyArguments,)) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    if earlier_study:
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # no cell, no lock
    else:
        assert not root.exists()
