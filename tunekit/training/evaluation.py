"""Evaluation inside a run: exact across processes, for language models and classifiers alike."""

from collections.abc import Callable

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from tunekit.training.metrics import language_model_metrics
from tunekit.training.rtd import evaluate_detection, replaced_token_detection_of
from tunekit.training.step import model_forward

MetricFn = Callable[[np.ndarray, np.ndarray], dict[str, float]]


def evaluate_model(
    model: torch.nn.Module,
    dataloader: DataLoader,
    accelerator: Accelerator,
    metric_fn: MetricFn | None,
    prefix: str = "eval",
    masked_only: bool = False,
) -> dict[str, float]:
    """Exact distributed evaluation: per-example sums go through `gather_for_metrics`, which drops
    the duplicates that even batches add on the last step."""
    if replaced_token_detection_of(model) is not None:  # its own terms and accuracies (tunekit.rtd)
        return evaluate_detection(model, dataloader, accelerator, prefix)
    model.eval()
    sums, counts, predictions, references = [], [], [], []
    with torch.no_grad():
        for batch in dataloader:
            loss_sum, count, logits = model_forward(model, batch, accelerator, masked_only)
            loss_sum, count = accelerator.gather_for_metrics((loss_sum, count))
            sums.append(loss_sum.cpu())
            counts.append(count.cpu())
            if metric_fn is not None:
                predicted, labels = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
                predictions.append(predicted.cpu().numpy())
                references.append(labels.cpu().numpy())
    model.train()
    mean_loss = float(torch.cat(sums).sum() / torch.cat(counts).sum().clamp(min=1))
    if metric_fn is None:
        metrics = language_model_metrics(mean_loss)
    else:
        metrics = {"loss": mean_loss, **metric_fn(np.concatenate(predictions), np.concatenate(references))}
    return {f"{prefix}_{key}": value for key, value in metrics.items()}


def is_better(value: float, best: float | None, metric: str) -> bool:
    """Whether `value` beats the best so far: lower for a loss, higher for any other metric."""
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best
