"""A saved LSTM classifier loads where tunekit is not installed, from the code saved next to it."""

import ast
import json
import os
import subprocess
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tunekit  # noqa: F401  (registers the LSTM for this process's own load)
from tests.processes import run_bounded
from tunekit.config import parse_recipe
from tunekit.training.tasks import run_finetuning

TEXTS = ["a wonderful film", "dull and awful", "the plot was fine"]

# Runs in a fresh `python -I` (no PYTHONPATH, no cwd on sys.path); the meta-path hook refuses
# tunekit even though the venv holds an editable install of it.
FRESH_PROCESS = """
import importlib.abc, json, sys

class NoTunekit(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tunekit":
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoTunekit())
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

model_dir, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
with torch.no_grad():
    logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
classifier = pipeline("text-classification", model=model_dir, trust_remote_code=True)
print(json.dumps({
    "module": type(model).__module__,
    "logits": logits.tolist(),
    "labels": [p["label"] for p in classifier(texts)],
    "tunekit_loaded": any(name.split(".")[0] == "tunekit" for name in sys.modules),
}))
"""


def test_an_lstm_classifier_loads_and_predicts_without_tunekit(finetune_argv, tmp_path):
    output_dir = tmp_path / "finetune"
    argv = [
        *finetune_argv,
        "--model_type",
        "lstm",
        "--max_steps",
        "3",
        "--label_names",
        "negative",
        "positive",
    ]
    run_finetuning(*parse_recipe(argv))

    config = json.loads((output_dir / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "lstm.LSTMConfig",
        "AutoModelForSequenceClassification": "lstm.LSTMForSequenceClassification",
    }
    copied = ast.parse((output_dir / "lstm.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(copied)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(copied) if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch", "transformers"}

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env |= {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    done = run_bounded(
        [sys.executable, "-I", "-c", FRESH_PROCESS, str(output_dir), json.dumps(TEXTS)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert not fresh["tunekit_loaded"] and fresh["module"].startswith("transformers_modules.")

    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert type(model).__module__ == "tunekit.models.lstm"
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    with torch.no_grad():
        logits = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(torch.tensor(fresh["logits"]), logits, atol=1e-6, rtol=0)
    assert fresh["labels"] == [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
