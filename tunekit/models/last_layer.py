"""Run an encoder's last layer only at the positions its head reads.

Every layer but the last must run at every position: its output there is a key and a value of the
next layer. The last layer's output, though, is read only where the head reads it: the masked
positions of an MLM batch (about 15 %), or position 0 of a classifier that pools its first token.
Its keys and values still come from every position, but its queries, attention output and
feed-forward need run only at those positions. In a 4-layer encoder that is about a fifth of the
layer work, skipped exactly: the loss, the gradients and the saved weights are those of the stock
forward (`tests/tunekit/models/test_last_layer.py`).

How: on this model instance only, the last layer's `forward` is replaced by one that reads
`QueryRows.rows` ((batch, queries) positions in the sequence), which a forward pre-hook sets for
one call; with no rows it is the stock forward, so the fill-mask pipeline, the probes and any
call that asks for every hidden state get the dense model. The attention mask's rows at those
positions are gathered, so padding and ModernBERT's sliding windows hold unchanged. No parameter
or key is added: the checkpoint stays a plain transformers one.

Supported: BERT and RoBERTa layers (`attention.self` + `feed_forward_chunk`) and ModernBERT layers
(`attn.Wqkv` + `mlp`); other models (DistilBERT, the LSTM, decoders) run their stock last layer.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn.functional import scaled_dot_product_attention

FIRST_TOKEN_POOLING_MODELS = ("BertForSequenceClassification", "RobertaForSequenceClassification")


@dataclass
class QueryRows:
    """The positions the last layer runs at during the current forward call, or None for all."""

    rows: torch.Tensor | None = None
    ran_at_rows: bool = False  # whether the layer's last call did: the MLM head then reads by slot


def _layer_kind(layer: torch.nn.Module) -> str | None:
    attention = getattr(layer, "attention", None)
    # A BERT layer built as a decoder may cross-attend, which the rows-only forward does not do.
    decoder = getattr(layer, "is_decoder", False)
    if hasattr(attention, "self") and hasattr(layer, "feed_forward_chunk") and not decoder:
        return "bert"
    if hasattr(getattr(layer, "attn", None), "Wqkv") and hasattr(layer, "mlp"):
        return "modernbert"
    return None


def _last_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None) or getattr(base, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        return None
    return layers[-1] if _layer_kind(layers[-1]) else None


def _take(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """values[b, rows[b, q]] for (batch, seq, features) values."""
    batch, queries = rows.shape
    values = values.expand(batch, *values.shape[1:])
    return values.gather(1, rows.unsqueeze(-1).expand(batch, queries, values.shape[-1]))


def _mask_rows(mask: torch.Tensor | None, rows: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """The (batch, heads, seq, seq) attention mask's rows at the query positions."""
    if mask is None:
        return None
    batch, queries = rows.shape
    mask = mask.expand(batch, mask.shape[1], mask.shape[2], mask.shape[3])
    index = rows[:, None, :, None].expand(batch, mask.shape[1], queries, mask.shape[3])
    mask = mask.gather(2, index)
    return mask if mask.dtype == torch.bool else mask.to(dtype)


def _attend(query, key, value, mask, rows, dropout: float, scale: float) -> torch.Tensor:
    """Multi-head attention of (batch, heads, queries, head_dim) queries; (batch, queries, hidden)."""
    output = scaled_dot_product_attention(
        query, key, value, attn_mask=_mask_rows(mask, rows, query.dtype), dropout_p=dropout, scale=scale
    )
    return output.transpose(1, 2).reshape(query.shape[0], query.shape[2], -1)


def _bert_rows(layer, hidden: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor:
    """A post-LN BERT/RoBERTa layer at the query positions only."""
    attention = layer.attention.self
    hidden_at_rows = _take(hidden, rows)

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], -1, attention.attention_head_size).transpose(1, 2)

    dropout = attention.dropout.p if layer.training else 0.0
    attended = _attend(
        heads(attention.query(hidden_at_rows)),
        heads(attention.key(hidden)),
        heads(attention.value(hidden)),
        mask,
        rows,
        dropout,
        attention.scaling,
    )
    return layer.feed_forward_chunk(layer.attention.output(attended, hidden_at_rows))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE as ModernBERT applies it (in fp32), for (batch, heads, seq, head_dim) x."""
    half = x.shape[-1] // 2
    x32 = x.float()
    rotated = torch.cat((-x32[..., half:], x32[..., :half]), dim=-1)
    return (x32 * cos.unsqueeze(1) + rotated * sin.unsqueeze(1)).to(x.dtype)


def _modernbert_rows(layer, hidden, mask, position_embeddings, rows: torch.Tensor) -> torch.Tensor:
    """A pre-LN ModernBERT layer at the query positions only."""
    attention = layer.attn
    batch, seq = hidden.shape[:2]
    # The fused Wqkv runs at every position (slicing its weight would bypass a LoRA wrapper); its
    # query third is then read at the rows only.
    qkv = attention.Wqkv(layer.attn_norm(hidden)).view(batch, seq, 3, -1, attention.head_dim)
    query, key, value = qkv.unbind(dim=2)  # each (batch, seq, heads, head_dim)
    query = _take(query.flatten(2), rows).view(batch, rows.shape[1], -1, attention.head_dim)
    cos, sin = position_embeddings
    query = _rotate(query.transpose(1, 2), _take(cos, rows), _take(sin, rows))
    key, value = _rotate(key.transpose(1, 2), cos, sin), value.transpose(1, 2)
    dropout = attention.attention_dropout if layer.training else 0.0
    attended = _attend(query, key, value, mask, rows, dropout, attention.head_dim**-0.5)
    hidden_at_rows = _take(hidden, rows) + attention.out_drop(attention.Wo(attended))
    return hidden_at_rows + layer.mlp(layer.mlp_norm(hidden_at_rows))


def _query_rows_forward(layer: torch.nn.Module, stock: Callable, state: QueryRows) -> Callable:
    kind = _layer_kind(layer)

    def forward(hidden_states, attention_mask=None, *args, **kwargs):
        # Under gradient checkpointing the layer runs again in backward, after the rows are cleared:
        # both passes must be the stock forward.
        state.ran_at_rows = not (
            state.rows is None or (layer.training and getattr(layer, "gradient_checkpointing", False))
        )
        if not state.ran_at_rows:
            return stock(hidden_states, attention_mask, *args, **kwargs)
        if kind == "bert":
            return _bert_rows(layer, hidden_states, attention_mask, state.rows)
        return _modernbert_rows(
            layer, hidden_states, attention_mask, kwargs["position_embeddings"], state.rows
        )

    return forward


def install_query_rows(model: torch.nn.Module) -> QueryRows | None:
    """Make `model`'s last layer run at `QueryRows.rows` when they are set; idempotent.

    Returns the shared state, or None when the model's last layer is not one tunekit knows."""
    existing = getattr(model, "_tunekit_query_rows", None)
    if existing is not None:
        return existing
    layer = _last_layer(model)
    if layer is None:
        return None
    state = QueryRows()
    layer.forward = _query_rows_forward(layer, layer.forward, state)
    model._tunekit_query_rows = state
    return state


def has_query_rows(model: torch.nn.Module) -> bool:
    """Whether `install_query_rows` made the model's last layer able to run at chosen rows."""
    return getattr(model, "_tunekit_query_rows", None) is not None


def query_only_parameters(model: torch.nn.Module) -> int:
    """Weights of the last layer that are needed only where its output is read: all but the key and
    value projections, which every position needs. 0 when the last layer always runs everywhere."""
    layer = _last_layer(model)
    if layer is None:
        return 0
    total = sum(p.numel() for p in layer.parameters())
    if _layer_kind(layer) == "bert":
        projections = (layer.attention.self.key, layer.attention.self.value)
        return total - sum(p.numel() for module in projections for p in module.parameters())
    return total - sum(p.numel() for p in layer.attn.Wqkv.parameters()) * 2 // 3  # K and V of Q|K|V


def pools_first_token(model: torch.nn.Module) -> bool:
    """A sequence classifier whose head reads the last layer at position 0 only."""
    name = type(model).__name__
    if name == "ModernBertForSequenceClassification":
        return model.config.classifier_pooling == "cls"
    return name in FIRST_TOKEN_POOLING_MODELS


def install_first_token_last_layer(model: torch.nn.Module) -> bool:
    """Run a first-token classifier's last layer at position 0 only; idempotent.

    Returns whether it applies (a mean-pooled ModernBERT, the LSTM and decoders keep theirs)."""
    if getattr(model, "_tunekit_first_token", False):
        return True
    if not pools_first_token(model) or (state := install_query_rows(model)) is None:
        return False

    def set_rows(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        inputs = kwargs.get("input_ids", args[0] if args else None)
        if inputs is None:
            inputs = kwargs.get("inputs_embeds")
        # Every hidden state asked for, or attentions: the dense forward, so they are all real.
        dense = inputs is None or kwargs.get("output_hidden_states") or kwargs.get("output_attentions")
        state.rows = (
            None if dense else torch.zeros(inputs.shape[0], 1, dtype=torch.long, device=inputs.device)
        )

    def clear_rows(module: torch.nn.Module, args: tuple, kwargs: dict, output) -> None:
        state.rows = None

    model.register_forward_pre_hook(set_rows, with_kwargs=True)
    model.register_forward_hook(clear_rows, with_kwargs=True)
    model._tunekit_first_token = True
    return True


def query_layout(labels: torch.Tensor, ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each row's targets sit, for the last layer, and where the flat targets are among them.

    Returns `rows` (batch, width): the target positions of each example, left-aligned and padded
    with position 0 (whose output is computed and never read), width = the most targets in a row;
    and `slots` (targets,): for the targets in flat row-major order (the order of
    `mlm_head.masked_positions`), their index into the flattened (batch x width) grid. Computed on
    the host by the collator, so the device never has to report how many targets a row holds."""
    targets = labels != ignore_index
    slot = targets.long().cumsum(1) - 1
    example, position = targets.nonzero(as_tuple=True)
    slot = slot[example, position]
    width = max(int(targets.sum(1).max()) if labels.numel() else 0, 1)
    rows = torch.zeros(labels.shape[0], width, dtype=torch.long)
    rows[example, slot] = position
    return rows, example * width + slot
