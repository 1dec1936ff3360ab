"""F1 as an `evaluate` module shipped with tunekit, so it loads by path with no Hub access.

Same inputs and output as the Hub's `f1` metric (binary, macro, micro or weighted averaging),
computed with scikit-learn like the Hub's version.
"""

import datasets
import evaluate
from sklearn.metrics import f1_score


class F1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Harmonic mean of precision and recall.",
            citation="",
            inputs_description="predictions: list of int, references: list of int, average: str",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self, predictions, references, labels=None, pos_label=1, average="binary", sample_weight=None
    ):
        score = f1_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
        )
        return {
            "f1": score.tolist() if hasattr(score, "tolist") and getattr(score, "ndim", 0) else float(score)
        }
