"""Comparing a run's recipe with the one saved beside an earlier run (resume, and a study's reuse)."""

from pathlib import Path

import pytest
import yaml

from tunekit.errors import TunekitError
from tunekit.training.preflight import check_resume_recipe, recipe_changes


def saved_recipe(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_recipe_changes_names_each_changed_field_and_skips_the_ignored(tmp_path):
    saved = saved_recipe(tmp_path, {"learning_rate": 0.002, "seed": 42, "logging_steps": 50})
    current = {"learning_rate": 0.001, "seed": 42, "logging_steps": 10}
    assert recipe_changes(saved, current, frozenset({"logging_steps"})) == "learning_rate (0.002 -> 0.001)"
    assert recipe_changes(saved, {"seed": 42}, frozenset()) == ""


def test_a_field_the_saved_recipe_lacks_counts_as_its_default(tmp_path):
    saved = saved_recipe(tmp_path, {"seed": 42})
    assert recipe_changes(saved, {"seed": 42, "objective": "mlm"}, frozenset(), {"objective": "mlm"}) == ""
    changes = recipe_changes(saved, {"seed": 42, "objective": "rtd"}, frozenset(), {"objective": "mlm"})
    assert changes == "objective ('mlm' -> 'rtd')"
    # Without a default, a field the saved recipe predates is not compared (as a resume has always done).
    assert recipe_changes(saved, {"seed": 42, "objective": "rtd"}, frozenset()) == ""


def test_one_file_named_two_ways_is_the_same_value(tmp_path, monkeypatch):
    data = tmp_path / "data" / "train.jsonl"
    data.parent.mkdir()
    data.write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    saved = saved_recipe(tmp_path, {"train_file": ["data/train.jsonl"]})
    assert recipe_changes(saved, {"train_file": [str(data)]}, frozenset()) == ""
    other = tmp_path / "data" / "other.jsonl"
    other.write_text("{}\n")
    assert "train_file" in recipe_changes(saved, {"train_file": [str(other)]}, frozenset())


def test_a_resume_with_another_recipe_is_refused_in_one_line(tmp_path):
    saved = saved_recipe(tmp_path, {"learning_rate": 0.002, "max_steps": 100})
    check_resume_recipe(saved, {"learning_rate": 0.002, "max_steps": 200})  # a longer horizon may resume
    with pytest.raises(TunekitError, match=r"^resume_from_checkpoint: .*learning_rate \(0\.002 -> 0\.003\)"):
        check_resume_recipe(saved, {"learning_rate": 0.003, "max_steps": 100})
    (tmp_path / "recipe.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(TunekitError, match="unreadable"):
        check_resume_recipe(saved, {"learning_rate": 0.002})
