"""The scripts as users run them: subprocesses, a shrunken tiny recipe, loadable outputs."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, TINY_MODEL
from tests.processes import run_bounded

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}


def run(script: str, *argv: str) -> subprocess.CompletedProcess:
    return run_bounded(
        [sys.executable, str(REPO / "scripts" / script), *argv],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
        cwd=REPO,
    )


@pytest.mark.slow
def test_pretrain_then_finetune_from_the_tiny_recipes(tmp_path, corpus_files):
    shrink = [*TINY_MODEL, "--report_to", "none", "--disable_tqdm", "true"]
    pretrain = run(
        "pretrain.py",
        "recipes/tiny/pretrain.yaml",
        *shrink,
        "--max_steps",
        "6",
        "--eval_steps",
        "3",
        "--save_steps",
        "3",
        "--output_dir",
        str(tmp_path / "pre"),
    )
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    assert (tmp_path / "pre" / "checkpoints" / "step_6").is_dir()

    # The linear probe of a saved pretraining: one JSON line, validation carved from train.
    probe = run(
        "probe.py", str(tmp_path / "pre"), "--train_file", str(corpus_files["train"]), "--max_length", "32"
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    accuracy = json.loads(probe.stdout.splitlines()[-1])["linear_probe_accuracy"]
    assert 0.0 <= accuracy <= 1.0

    finetune = run(
        "finetune.py",
        "recipes/tiny/finetune_pretrained.yaml",
        *shrink,
        "--max_steps",
        "4",
        "--eval_steps",
        "2",
        "--max_seq_length",
        "48",
        "--model_name_or_path",
        str(tmp_path / "pre"),
        "--output_dir",
        str(tmp_path / "ft"),
    )
    assert finetune.returncode == 0, finetune.stderr[-3000:]
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["init"] == str(tmp_path / "pre") and "test_accuracy" in results

    code = (
        "from transformers import pipeline\n"
        f"clf = pipeline('text-classification', model={str(tmp_path / 'ft')!r})\n"
        "print(clf('the plot was not good')[0]['label'])"
    )
    loaded = run_bounded([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip() in ("negative", "positive"), loaded.stderr[-2000:]

    lstm = run(
        "finetune.py",
        "recipes/tiny/lstm.yaml",
        "--max_steps",
        "4",
        "--report_to",
        "none",
        "--tokenizer_name_or_path",
        str(tmp_path / "pre"),
        "--output_dir",
        str(tmp_path / "lstm"),
    )
    assert lstm.returncode == 0, lstm.stderr[-3000:]
    code = (
        "import tunekit\nfrom transformers import AutoModelForSequenceClassification as A\n"
        f"print(type(A.from_pretrained({str(tmp_path / 'lstm')!r})).__name__)"
    )
    loaded = run_bounded([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert loaded.stdout.strip() == "LSTMForSequenceClassification", loaded.stderr[-2000:]


def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path):
    result = run("finetune.py", "recipes/tiny/lstm.yaml", "--learning_rate", "-1")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: learning_rate must be positive, got -1.0"
    result = run("pretrain.py", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "recipe not found" in result.stderr


def test_help_lists_fields():
    result = run("pretrain.py", "--help")
    assert result.returncode == 0 and "--per_device_train_batch_size" in result.stdout
