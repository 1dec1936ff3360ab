"""Run a masked LM's prediction head on the masked positions only.

About 15 % of the tokens in an MLM batch carry a target, yet a stock `*ForMaskedLM.forward` runs its
head (transform + vocabulary decoder) on all of them, and the decoder is the widest matmul in a small
encoder. Here the model's own forward still runs, untouched, through any DDP or compile wrapper
(DDP needs its forward to be the one called): a hook on the encoder body (`model.base_model`, which
every transformers model names through `base_model_prefix`) replaces its last hidden state with the
rows at the masked positions, shaped (1, M, hidden). The heads of BERT (`cls`), RoBERTa (`lm_head`),
DistilBERT (`vocab_transform` ... `vocab_projector`) and ModernBERT (`head` + `decoder`) are all
position-wise, so the rest of `forward` yields logits of shape (1, M, vocab) for exactly those rows.

Nothing is added to the model: no parameter, no key, so the saved checkpoint is a plain
`AutoModelForMaskedLM` one. A forward call without `masked_positions` is the stock dense forward
(the fill-mask pipeline and the probes use it).

`masked_positions` are flat indices into the (batch x seq) grid. The MLM collator computes them on
the host; deriving them on the device from `labels` would make the host wait for the device
(a boolean index has a data-dependent size). Where the encoder's last layer can run at chosen
positions only (`tunekit.models.last_layer`), the collator's `masked_rows` / `masked_slots` say where: the
last layer then returns (batch, width) rows and the hook picks the targets among them.
"""

from typing import Any

import torch

from tunekit.models.last_layer import QueryRows, install_query_rows, query_layout

MASKED_POSITIONS = "masked_positions"
MASKED_ROWS = "masked_rows"  # (batch, width) target positions per example, for the last layer
MASKED_SLOTS = "masked_slots"  # each flat target's index into the flattened (batch x width) rows
MASKED_KEYS = (MASKED_POSITIONS, MASKED_ROWS, MASKED_SLOTS)
IGNORE_INDEX = -100


def masked_positions(labels: torch.Tensor) -> torch.Tensor:
    """Flat indices of the positions that carry a target."""
    return (labels.reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1)


def supports_masked_only_head(model: torch.nn.Module) -> bool:
    """A transformers masked LM whose head sits on top of `base_model` (all of tunekit's encoders)."""
    return type(model).__name__.endswith("ForMaskedLM") and model.base_model is not model


class _MaskedOnlyHead:
    """The two hooks and the positions they hand each other within one forward call."""

    def __init__(self, last_layer: QueryRows | None) -> None:
        self.last_layer = last_layer  # None: the last layer always runs at every position
        self.positions: torch.Tensor | None = None
        self.slots: torch.Tensor | None = None

    def take_positions(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        self.positions = kwargs.pop(MASKED_POSITIONS, None)
        rows, slots = kwargs.pop(MASKED_ROWS, None), kwargs.pop(MASKED_SLOTS, None)
        if self.last_layer is not None:
            use_rows = (
                self.positions is not None and rows is not None and not kwargs.get("output_hidden_states")
            )
            self.last_layer.rows, self.slots = (rows, slots) if use_rows else (None, None)
        return args, kwargs

    def gather(self, module: torch.nn.Module, args: tuple, output: Any) -> Any:
        if self.positions is None:
            return output
        hidden = output.last_hidden_state
        ran_at_rows = self.last_layer is not None and self.last_layer.ran_at_rows
        index = self.slots if ran_at_rows and self.slots is not None else self.positions
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)
        output.last_hidden_state = rows.unsqueeze(0)  # ModelOutput keeps `output[0]` in step
        self.positions = self.slots = None
        if self.last_layer is not None:
            self.last_layer.rows, self.last_layer.ran_at_rows = None, False
        return output


def install_masked_only_head(model: torch.nn.Module) -> bool:
    """Let `model(..., masked_positions=...)` compute the head on those positions only; idempotent.

    Returns whether the model supports it (the LSTM and classifiers do not)."""
    if not supports_masked_only_head(model):
        return False
    if getattr(model, "_tunekit_masked_only_head", None) is None:
        hooks = _MaskedOnlyHead(install_query_rows(model))
        model.register_forward_pre_hook(hooks.take_positions, with_kwargs=True)
        model.base_model.register_forward_hook(hooks.gather)
        model._tunekit_masked_only_head = hooks
    return True


def masked_targets(labels: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The targets of the gathered rows, and the example each row belongs to."""
    return labels.reshape(-1).index_select(0, positions), torch.div(
        positions, labels.shape[-1], rounding_mode="floor"
    )


def masked_batch_keys(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the collator adds to an MLM batch so the model can skip the unread work."""
    rows, slots = query_layout(labels, IGNORE_INDEX)
    return {MASKED_POSITIONS: masked_positions(labels), MASKED_ROWS: rows, MASKED_SLOTS: slots}
