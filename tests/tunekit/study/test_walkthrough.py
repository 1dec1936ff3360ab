import yaml

from tests.conftest import TINY_RECIPE
from tunekit.study.walkthrough import STAGES, format_table, run_walkthrough

TINY = {**TINY_RECIPE, "max_steps": 3, "per_device_train_batch_size": 4}


def test_walkthrough_runs_the_four_stages_and_tabulates_them(corpus_files, tmp_path):
    labeled = {
        "train_file": [str(corpus_files["train"])],
        "test_file": str(corpus_files["test"]),
        "max_seq_length": 48,
        "tokenizer_name_or_path": str(tmp_path / "pre"),
        **TINY,
    }
    recipes = {
        "pretrain.yaml": {
            "train_file": [str(corpus_files["unlabeled"])],
            "vocab_size": 300,
            "max_seq_length": 32,
            "output_dir": str(tmp_path / "pre"),
            **TINY,
        },
        "finetune_pretrained.yaml": {
            **labeled,
            "model_name_or_path": str(tmp_path / "pre"),
            "output_dir": str(tmp_path / "ft"),
        },
        "finetune_scratch.yaml": {**labeled, "output_dir": str(tmp_path / "scratch")},
        "lstm.yaml": {**labeled, "model_type": "lstm", "output_dir": str(tmp_path / "lstm")},
    }
    assert sorted(recipes) == sorted(recipe for _, recipe, _ in STAGES)
    for name, values in recipes.items():
        (tmp_path / name).write_text(yaml.safe_dump(values))
    rows = run_walkthrough(recipes=tmp_path)
    assert [row["name"] for row in rows] == [name for name, _, _ in STAGES]
    table = format_table(rows).splitlines()
    assert len(table) == 2 + 4 and table[2].split()[1] == "-"  # pretraining has no test accuracy
    assert all(0 <= row["test_accuracy"] <= 1 for row in rows[1:])
