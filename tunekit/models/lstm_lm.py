"""The LSTM baseline's language model: ULMFiT/ELMo-style pretraining, and its targets.

Kept apart from `tunekit.models.lstm`, whose file `save_pretrained` copies next to a saved classifier:
only the classifier loads without tunekit, so only it (and the encoder it shares) travels.
"""

import torch
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

from tunekit.models.lstm import Lengths, LSTMConfig, LSTMModel, LSTMPreTrainedModel


class LSTMForLanguageModeling(LSTMPreTrainedModel):
    """ULMFiT/ELMo-style LM pretraining for the LSTM baseline: the forward direction predicts the
    next token, the backward direction the previous one. Fine-tuning loads its `lstm.*` weights
    into LSTMForSequenceClassification, as a pretrained transformer's encoder is loaded.

    `logits` are laid out to match `tunekit.data.collators.language_model_labels`: positions 0..T-1
    for the forward direction, then T..2T-1 for the backward one, so the training loop's token
    cross-entropy needs no LSTM-specific code.
    """

    def __init__(self, config: LSTMConfig) -> None:
        if config.bidirectional and config.num_hidden_layers > 1:
            # nn.LSTM feeds both directions of layer 1 into each direction of layer 2, so a stacked
            # forward state has already read the next token: the LM would learn to copy it.
            raise ValueError(
                "num_hidden_layers: a bidirectional LSTM language model must have 1 layer (stacked "
                f"bidirectional layers see the tokens they predict), got {config.num_hidden_layers}"
            )
        super().__init__(config)
        self.lstm = LSTMModel(config)
        if config.tie_word_embeddings:
            self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))
        else:
            self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.lstm.embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        lengths: Lengths | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        states = self.lstm(input_ids, attention_mask, lengths)
        hidden = self.config.hidden_size
        directions = [states[..., :hidden]]
        if self.config.bidirectional:
            directions.append(states[..., hidden:])
        stacked = torch.cat(directions, dim=1)
        if self.config.tie_word_embeddings:
            # Tied as in AWD-LSTM/ULMFiT: predicting a word from its context is what gives words
            # used alike similar embeddings, and those input embeddings are what fine-tuning keeps.
            weight = self.lstm.embeddings.weight
            logits = nn.functional.linear(stacked.to(weight.dtype), weight, self.decoder_bias)
        else:
            logits = self.decoder(stacked.to(self.decoder.weight.dtype))
        # hidden_states as transformers models return them, so probes read an LSTM like an encoder.
        return MaskedLMOutput(logits=logits, hidden_states=(states,) if output_hidden_states else None)
