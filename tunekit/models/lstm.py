"""The LSTM baseline as a transformers model: its own config, `save_pretrained`, Auto classes.

Registered with `AutoConfig` and `AutoModelForSequenceClassification` when `tunekit` is
imported, so `AutoModelForSequenceClassification.from_pretrained(dir)` rebuilds it.
"""

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

# 16-bit formats whose numerics `recurrence_rounding` reproduces in fp32 arithmetic.
ROUNDING_DTYPES = {None: None, "bfloat16": torch.bfloat16, "float16": torch.float16}
# tunekit's collators hand an LSTM its rows' lengths under this batch key, as host integers:
# packing needs them on the host, and reading them off a mask on a GPU makes the host wait.
LENGTHS = "lengths"
Lengths = tuple[int, ...] | list[int]


class LSTMConfig(PretrainedConfig):
    model_type = "tunekit-lstm"

    def __init__(
        self,
        vocab_size: int = 4096,
        hidden_size: int = 128,
        num_hidden_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        classifier_pooling: str = "mean",
        fp32_recurrence: bool = True,
        recurrence_rounding: str | None = None,
        tie_word_embeddings: bool = True,
        pad_token_id: int = 0,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.classifier_pooling = classifier_pooling
        self.fp32_recurrence = fp32_recurrence
        if recurrence_rounding not in ROUNDING_DTYPES:
            raise ValueError(
                f"recurrence_rounding must be bfloat16, float16 or None, got {recurrence_rounding!r}"
            )
        self.recurrence_rounding = recurrence_rounding
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        # After super(): transformers 4.x's base config would reset it to its own default.
        self.tie_word_embeddings = tie_word_embeddings


class LSTMPreTrainedModel(PreTrainedModel):
    config_class = LSTMConfig
    base_model_prefix = "lstm"
    main_input_name = "input_ids"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.1)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            for name, param in module.named_parameters():
                if "bias" in name:
                    # Forget-gate bias of 1 lets gradients through early in training (Jozefowicz et al.).
                    nn.init.zeros_(param)
                    hidden = param.shape[0] // 4
                    param.data[hidden : 2 * hidden] = 1.0
                else:
                    nn.init.orthogonal_(param)


class LSTMModel(LSTMPreTrainedModel):
    """Embedding -> stacked (bi)LSTM; returns one state per token."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = nn.LSTM(
            config.hidden_size,
            config.hidden_size,
            num_layers=config.num_hidden_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_hidden_layers > 1 else 0.0,
        )
        self.post_init()

    def _recurrence_dtype(self, device_type: str) -> torch.dtype:
        """fp32 unless asked otherwise: the talk's point is that sigmoid/tanh gates compound
        rounding error step after step, so the recurrence keeps fp32 under bf16/fp16 autocast
        while embeddings and the classifier may run in 16 bit. `fp32_recurrence=False` runs it in
        the autocast dtype, to measure what that costs; `recurrence_rounding` (which overrides
        both) gives it 16-bit numerics without autocast, on hardware with no 16-bit units."""
        if self.config.fp32_recurrence or not torch.is_autocast_enabled(device_type):
            return torch.float32
        return torch.get_autocast_dtype(device_type)

    @property
    def output_size(self) -> int:
        return self.config.hidden_size * (2 if self.config.bidirectional else 1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        lengths: Lengths | None = None,
    ) -> torch.Tensor:
        if lengths is None:  # not from tunekit's collators: from the mask, or the pad tokens
            if attention_mask is None:
                attention_mask = (input_ids != self.config.pad_token_id).long()
            lengths = attention_mask.sum(dim=1).tolist()
        embedded = self.dropout(self.embeddings(input_ids))
        # Packing makes the backward direction start at each sequence's real last token, not at padding.
        packed, restore = _pack_longest_first(embedded, lengths)
        dtype = self._recurrence_dtype(input_ids.device.type)
        # Autocast has no consistent rule for LSTMs (CUDA runs cuDNN's in 16 bit, CPU keeps fp32),
        # so the precision is chosen here explicitly and autocast is switched off around it.
        with torch.autocast(device_type=input_ids.device.type, enabled=False):
            if self.config.recurrence_rounding is not None:
                rounding = ROUNDING_DTYPES[self.config.recurrence_rounding]
                output = rounded_lstm(self.encoder, packed._replace(data=packed.data.float()), rounding)
            elif dtype == torch.float32:
                output, _ = self.encoder(packed._replace(data=packed.data.float()))
            else:
                packed = packed._replace(data=packed.data.to(dtype))
                weights = {name: param.to(dtype) for name, param in self.encoder.named_parameters()}
                output, _ = torch.func.functional_call(self.encoder, weights, (packed,))
        states, _ = nn.utils.rnn.pad_packed_sequence(
            output, batch_first=True, total_length=input_ids.shape[1]
        )
        if restore is not None:
            states = states.index_select(0, restore)
        return self.dropout(states)


def _pack_longest_first(
    values: torch.Tensor, lengths: Lengths
) -> tuple[nn.utils.rnn.PackedSequence, torch.Tensor | None]:
    """`values` packed with rows ordered longest first, and the index that restores their order
    (None when the rows already are: every batch of packed LM blocks, so no copy either way).

    The order is worked out on the host: `pack_padded_sequence(enforce_sorted=False)` would do it
    on the device and, when unpacking, copy its index back to the host, waiting for the device."""
    lengths = [max(1, int(length)) for length in lengths]
    order = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    if order == list(range(len(order))):  # a stable sort leaves rows already longest first in place
        return nn.utils.rnn.pack_padded_sequence(values, lengths, batch_first=True), None
    restore = sorted(range(len(order)), key=order.__getitem__)
    order_index, restore_index = (
        torch.tensor(index).to(values.device, non_blocking=True) for index in (order, restore)
    )
    packed = nn.utils.rnn.pack_padded_sequence(
        values.index_select(0, order_index), [lengths[row] for row in order], batch_first=True
    )
    return packed, restore_index


def rounded_lstm(lstm: nn.LSTM, packed: nn.utils.rnn.PackedSequence, dtype: torch.dtype | None):
    """`lstm` on a packed batch, step by step in fp32 arithmetic with every intermediate result
    rounded to `dtype` (None: no rounding, which reproduces nn.LSTM bit for bit on CPU).

    This is a 16-bit recurrence's numerics (16-bit values, matmuls accumulated in fp32 as 16-bit
    units do) for CPUs without bf16 units, where a real bf16 LSTM runs 9-21x slower than fp32 and
    this 3-9x (a Python loop over time steps: it loses most at small batches). The rounding is a
    cast there and back; its backward rounds the gradient as well.
    """
    round_ = (lambda x: x) if dtype is None else (lambda x: x.to(dtype).float())
    sizes = packed.batch_sizes.tolist()
    inputs = round_(packed.data)
    for layer in range(lstm.num_layers):
        directions = []
        for suffix in ("", "_reverse")[: 1 + lstm.bidirectional]:
            w_ih, w_hh, b_ih, b_hh = (
                round_(getattr(lstm, f"{name}_l{layer}{suffix}"))
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            # The input projection for every time step in one matmul, as ATen's LSTM does.
            projected = round_(torch.addmm(b_ih, inputs, w_ih.T))
            directions.append(_rounded_steps(projected, sizes, w_hh, b_hh, round_, reverse=bool(suffix)))
        inputs = torch.cat(directions, dim=-1)
        if layer < lstm.num_layers - 1 and lstm.training and lstm.dropout:
            inputs = nn.functional.dropout(inputs, lstm.dropout, training=True)
    return packed._replace(data=inputs)


def _rounded_steps(projected, sizes, w_hh, b_hh, round_, reverse: bool) -> torch.Tensor:
    """One direction of one layer. Packed data is time-major with sequences sorted longest first,
    so step t holds the first sizes[t] sequences; going backwards a sequence joins, with a zero
    state, at its own last token."""
    # split, not slicing: the backward of T slices would build T gradients the size of the batch.
    per_step = torch.split(projected, sizes)
    state = cell = projected.new_zeros(0, w_hh.shape[1])
    outputs: list[torch.Tensor | None] = [None] * len(sizes)  # one per time step, either direction
    for t in reversed(range(len(sizes))) if reverse else range(len(sizes)):
        if (joining := sizes[t] - state.shape[0]) > 0:
            zeros = projected.new_zeros(joining, w_hh.shape[1])
            state, cell = torch.cat([state, zeros]), torch.cat([cell, zeros])
        state, cell = state[: sizes[t]], cell[: sizes[t]]
        gates = round_(per_step[t] + round_(torch.addmm(b_hh, state, w_hh.T)))
        input_gate, forget_gate, cell_gate, output_gate = gates.chunk(4, dim=1)
        input_gate, forget_gate = round_(torch.sigmoid(input_gate)), round_(torch.sigmoid(forget_gate))
        cell_gate, output_gate = round_(torch.tanh(cell_gate)), round_(torch.sigmoid(output_gate))
        cell = round_(round_(forget_gate * cell) + round_(input_gate * cell_gate))
        state = outputs[t] = round_(output_gate * round_(torch.tanh(cell)))
    return torch.cat(outputs)


class LSTMForSequenceClassification(LSTMPreTrainedModel):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.lstm = LSTMModel(config)
        self.classifier = nn.Linear(self.lstm.output_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.lstm.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.lstm.embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        lengths: Lengths | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:  # given lengths without a mask, the batch has no padding
            if lengths is None:
                attention_mask = (input_ids != self.config.pad_token_id).long()
            else:
                attention_mask = torch.ones_like(input_ids)
        states = self.lstm(input_ids, attention_mask, lengths)
        logits = self.classifier(self._pool(states, attention_mask).to(self.classifier.weight.dtype))
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def _pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooling = self.config.classifier_pooling
        if pooling == "mean":
            return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        if pooling == "max":
            return states.masked_fill(mask == 0, torch.finfo(states.dtype).min).max(dim=1).values
        if pooling == "last":
            # Forward direction's last real token, backward direction's first token.
            last = attention_mask.sum(1).clamp(min=1) - 1
            forward = states[torch.arange(states.shape[0]), last, : self.config.hidden_size]
            if not self.config.bidirectional:
                return forward
            return torch.cat([forward, states[:, 0, self.config.hidden_size :]], dim=-1)
        raise ValueError(f"classifier_pooling must be mean, max or last, got {pooling!r}")


# Registering for the Auto classes makes `save_pretrained` copy this file next to the weights and
# write `auto_map` into config.json, so the saved classifier loads with `trust_remote_code=True`
# where tunekit is not installed. That copy is all a user gets, so this module imports only torch
# and transformers.
LSTMConfig.register_for_auto_class()
LSTMForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
