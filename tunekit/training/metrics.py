"""Metrics through `evaluate`, loaded from modules that ship with tunekit.

`evaluate.load("accuracy")` fetches a script from the Hub; tunekit ships the modules it needs
and loads them by path, so evaluation works offline and gives the same numbers as the Hub's.
"""

import math
from functools import cache
from pathlib import Path

import evaluate
import numpy as np

MODULES_DIR = Path(__file__).parent / "metric_modules"


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """A shipped module by local path when tunekit has one, otherwise `evaluate.load(name)` (Hub)."""
    local = MODULES_DIR / name / f"{name}.py"
    return evaluate.load(str(local) if local.is_file() else name)


def classification_metrics(
    predictions: np.ndarray, references: np.ndarray, num_labels: int
) -> dict[str, float]:
    """Accuracy and macro-F1 (macro so that a majority-class guesser scores low on unbalanced data)."""
    accuracy = load_metric("accuracy").compute(predictions=predictions, references=references)["accuracy"]
    f1 = load_metric("f1").compute(
        predictions=predictions, references=references, average="macro", labels=list(range(num_labels))
    )["f1"]
    return {"accuracy": float(accuracy), "f1": float(f1)}


def language_model_metrics(mean_loss: float) -> dict[str, float]:
    return {"loss": mean_loss, "perplexity": math.exp(min(mean_loss, 50.0))}
