"""A study pushes each arm's best cell (by validation accuracy) with a card linking to its report."""

import dataclasses

from huggingface_hub import ModelCard

from tests.fake_hub import USER
from tests.tunekit.hub.test_push import hub  # noqa: F401  (fixture)
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
