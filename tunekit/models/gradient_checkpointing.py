"""Gradient checkpointing (the Trainer's `--gradient_checkpointing`): transformers recomputes each
layer's activations in the backward pass instead of keeping them.

`use_reentrant=False` is torch's recommended variant: it works with inputs that need no gradient
(frozen embeddings under LoRA) and restores the RNG state before recomputing, so dropout draws the
same masks twice. The last layer, which tunekit runs at the rows its head reads, is not
checkpointed (see `enable_gradient_checkpointing`). tunekit's LSTM is one `nn.LSTM` call per
direction, with no layers to checkpoint: it is refused in one line before any data is read.
"""

from typing import Any

import torch

from tunekit.errors import TunekitError
from tunekit.models.last_layer import _last_layer, has_query_rows

LSTM_REFUSAL = (
    "gradient_checkpointing: the LSTM has no layers to checkpoint (one nn.LSTM call per direction); "
    "it is available for the transformer model types"
)


def check_gradient_checkpointing(model_args: Any, train_args: Any) -> None:
    if train_args.gradient_checkpointing and model_args.is_lstm:
        raise TunekitError(LSTM_REFUSAL)


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """On the model as built; under LoRA, on the transformers model peft wraps."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft's wrapper
    if not getattr(inner, "supports_gradient_checkpointing", False):
        raise TunekitError(
            f"gradient_checkpointing: {type(inner).__name__} does not support it (transformers models do)"
        )
    options = {"use_reentrant": False}
    if hasattr(inner, "activation_checkpointing_enable"):  # transformers >= 5.25's name
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    if has_query_rows(model) or has_query_rows(inner):
        # tunekit runs the last layer at the rows its head reads (tunekit.last_layer), chosen by hooks
        # around the model's forward; a recompute in the backward pass would run after them, at every
        # row, and draw other dropout masks. That layer keeps its (row-sized) activations instead.
        last = _last_layer(inner)
        if last is not None and hasattr(last, "gradient_checkpointing"):
            last.gradient_checkpointing = False
