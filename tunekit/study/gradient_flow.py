"""Gradient flow through an LSTM over time: does a bf16 recurrence make gradients vanish sooner?

The probe takes the loss of the LSTM language model's forward direction at the last position
(predicting token T-1 from tokens 0..T-2) and measures, at every earlier position t, the norm of its
gradient with respect to the LSTM's input there (the embedding of token t). Only the recurrence
carries that gradient back from the end, so the curve against the distance T-1-t shows how far back
the loss still reaches; comparing the recurrence in fp32 and bf16 on the same weights and inputs
isolates what bf16 arithmetic does to it.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from tunekit.errors import TunekitError
from tunekit.models.lstm_lm import LSTMForLanguageModeling


def input_gradient_norms(
    model: LSTMForLanguageModeling,
    input_ids: torch.Tensor,
    *,
    autocast_bf16: bool,
    fp32_recurrence: bool,
) -> list[float]:
    """Mean over the batch of ||d loss_last / d x_t|| for t = 0..T-1 (the last is 0: it is the target).

    `autocast_bf16` runs the pass under bf16 autocast; `fp32_recurrence=False` then runs the
    recurrence itself in bf16 (as the study's `*_bf16` arms train), and without autocast rounds
    the fp32 recurrence to bf16 after every operation (`lstm_bf16_rounded` studies). Dropout is
    off (eval mode) and the model's own recurrence settings are restored afterwards.
    """
    if not isinstance(model, LSTMForLanguageModeling):
        raise TunekitError(
            f"model: the gradient-flow probe needs an LSTM language model, got {type(model).__name__}"
        )
    if input_ids.dim() != 2 or input_ids.shape[1] < 2:
        raise TunekitError(f"input_ids: need a (batch, T >= 2) tensor, got shape {tuple(input_ids.shape)}")
    captured: list[torch.Tensor] = []

    def keep_gradient(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        output.retain_grad()
        captured.append(output)

    was_training, saved = model.training, (model.config.fp32_recurrence, model.config.recurrence_rounding)
    model.eval()
    model.config.fp32_recurrence = fp32_recurrence
    model.config.recurrence_rounding = None if fp32_recurrence or autocast_bf16 else "bfloat16"
    handle = model.lstm.embeddings.register_forward_hook(keep_gradient)
    try:
        device = input_ids.device
        attention_mask = torch.ones_like(input_ids)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        last = input_ids.shape[1] - 2  # forward direction, position T-2 predicts token T-1
        loss = nn.functional.cross_entropy(logits[:, last].float(), input_ids[:, last + 1])
        model.zero_grad(set_to_none=True)
        loss.backward()
        (embedded,) = captured
        norms = embedded.grad.float().norm(dim=-1).mean(dim=0)
    finally:
        handle.remove()
        model.config.fp32_recurrence, model.config.recurrence_rounding = saved
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return [float(value) for value in norms]


def plot_gradient_flow(path: str | Path, curves: dict[str, list[float]], title: str) -> None:
    """Gradient norm (log y) against distance from the predicted token, one line per curve."""
    from matplotlib.figure import Figure

    if not curves:
        raise TunekitError(f"no gradient-norm curves to plot in {path}")
    figure = Figure(figsize=(8, 4.5), dpi=150)
    ax = figure.add_subplot()
    for (label, norms), style in zip(curves.items(), ("-", "--", "-.", ":") * 4, strict=False):
        values = np.asarray(norms[:-1])  # the last position is the target itself: no gradient
        distance = np.arange(len(values), 0, -1)  # t = 0 is T-1 tokens before the target
        ax.plot(distance, np.where(values > 0, values, np.nan), linestyle=style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(
        xlabel="distance from the predicted token (positions, log scale)",
        ylabel="‖∂ loss / ∂ input embedding‖ (log scale)",
        title=title,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
