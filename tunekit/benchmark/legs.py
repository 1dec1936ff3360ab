"""What every leg shares: its result, the training settings both systems get, and model FLOPs.

FLOPs per token come from `tunekit.training.flops.training_flops_per_token` with the MLM head, and the last
layer but its keys and values, counted on the masked share of tokens (a classifier's last layer on
its first token) for every system: that is the work the loss needs. A system that runs
the head on every token (BertForMaskedLM under the Trainer) does the rest as waste, like padding.
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, PretrainedConfig

from tunekit.benchmark.presets import Case
from tunekit.models.last_layer import query_only_parameters
from tunekit.training.flops import training_flops_per_token

MLM_PROBABILITY = 0.15
LEARNING_RATE = {"pretraining": 5e-4, "finetuning": 1e-4}
WARMUP_RATIO = {"pretraining": 0.06, "finetuning": 0.1}
SEED = 42


@dataclass
class LegResult:
    """N timed optimizer steps of one system on one case."""

    system: str
    seconds: float
    examples: int
    tokens: int  # non-padding tokens in the timed steps' batches
    peak_memory_mib: float
    optimizer: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # process CPU time over the window


def optimizer_settings(task: str) -> dict[str, float]:
    """AdamW settings (tunekit's defaults) that both systems get."""
    return {
        "learning_rate": LEARNING_RATE[task],
        "weight_decay": 0.01,
        "adam_beta1": 0.9,
        "adam_beta2": 0.98,
        "adam_epsilon": 1e-8,
        "max_grad_norm": 1.0,
    }


def describe_optimizer(optimizer: dict[str, Any]) -> str:
    if not optimizer:
        return "unknown"
    kind = "fused" if optimizer.get("fused") else "foreach" if optimizer.get("foreach") else "torch default"
    return f"{optimizer.get('name', 'AdamW')} ({kind})"


def _parameter_count(parameters: Any) -> int:
    return sum(p.numel() for p in {id(p): p for p in parameters}.values())


def flops_per_token(config: PretrainedConfig, case: Case, mean_length: float) -> float:
    """Model FLOPs per trained token for `case`'s model; `mean_length` is the attention length T."""
    auto_class = AutoModelForMaskedLM if case.task == "pretraining" else AutoModelForSequenceClassification
    with torch.device("meta"):
        model = auto_class.from_config(config)
    base = model.base_model
    embeddings = _parameter_count(base.embeddings.parameters())
    body = _parameter_count(base.parameters()) - embeddings
    base_ids = {id(p) for p in base.parameters()}
    outside = _parameter_count(p for p in model.parameters() if id(p) not in base_ids)
    if case.task == "pretraining":
        # The decoder is tied to the input embeddings, so its vocab x hidden matmul is added here.
        head = outside + config.vocab_size * config.hidden_size
        fraction = last_layer_fraction = MLM_PROBABILITY
    else:  # the classifier runs once per example: a negligible head, counted with the body
        head, fraction, body = 0, 1.0, body + outside
        last_layer_fraction = 1 / max(1.0, mean_length)  # its last layer is read at position 0 only
    return training_flops_per_token(
        body,
        config.num_hidden_layers,
        config.hidden_size,
        round(mean_length),
        head,
        fraction,
        last_layer_params=query_only_parameters(model),
        last_layer_fraction=last_layer_fraction,
    )
