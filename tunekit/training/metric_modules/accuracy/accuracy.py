"""Accuracy as an `evaluate` module shipped with tunekit, so it loads by path with no Hub access.

Same inputs and output as the Hub's `accuracy` metric.
"""

import datasets
import evaluate
import numpy as np


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Share of predictions equal to the reference label.",
            citation="",
            inputs_description="predictions: list of int, references: list of int, normalize: bool",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, normalize: bool = True, sample_weight=None):
        hits = np.asarray(predictions) == np.asarray(references)
        weights = np.ones(len(hits)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        correct = float((hits * weights).sum())
        return {"accuracy": correct / weights.sum() if normalize else correct}
