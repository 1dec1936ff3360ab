import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from tunekit.training.metrics import MODULES_DIR, classification_metrics, load_metric


def test_shipped_metrics_load_offline_by_path():
    for name in ("accuracy", "f1"):
        assert (MODULES_DIR / name / f"{name}.py").is_file()
        assert load_metric(name).name == name


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    references, predictions = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    metrics = classification_metrics(predictions, references, num_labels=3)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    assert metrics["f1"] == pytest.approx(f1_score(references, predictions, average="macro"))


def test_macro_f1_punishes_the_majority_guesser():
    references = np.array([0] * 9 + [1])
    metrics = classification_metrics(np.zeros(10, dtype=int), references, num_labels=2)
    assert metrics["accuracy"] == pytest.approx(0.9) and metrics["f1"] < 0.5
