"""The pilot's weight copy: the causal twin's weights fill the stock ModernBERT encoder exactly."""

import torch
from transformers import (
    ModernBertConfig,
    ModernBertDecoderConfig,
    ModernBertDecoderForCausalLM,
    ModernBertForMaskedLM,
)

from tools.causal_twin_pilot import encoder_state_from_decoder

SIZES = dict(
    vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
    sep_token_id=2,
)  # fmt: skip


def test_a_single_token_reads_the_same_through_the_decoder_and_the_encoder_it_fills():
    torch.manual_seed(0)
    decoder = ModernBertDecoderForCausalLM(ModernBertDecoderConfig(**SIZES)).eval()
    encoder = ModernBertForMaskedLM(ModernBertConfig(**SIZES)).eval()
    missing, unexpected = encoder.load_state_dict(
        encoder_state_from_decoder(decoder.state_dict()), strict=False
    )
    assert not missing and not unexpected
    # One token: causal and bidirectional attention see the same context, so any misplaced weight
    # (q, k, v in the wrong order, a head left at its initialisation) changes the logits.
    tokens = torch.tensor([[5], [17], [40]])
    with torch.no_grad():
        expected = decoder(input_ids=tokens).logits
        got = encoder(input_ids=tokens, attention_mask=torch.ones_like(tokens)).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_last_position_of_one_layer_reads_the_same_so_q_k_v_are_in_their_places():
    # One token leaves attention a copy of v; over several tokens the last position attends to all of
    # them under both masks in a single layer, so a swapped q and k would show.
    torch.manual_seed(0)
    sizes = SIZES | {"num_hidden_layers": 1}
    decoder = ModernBertDecoderForCausalLM(ModernBertDecoderConfig(**sizes)).eval()
    encoder = ModernBertForMaskedLM(ModernBertConfig(**sizes)).eval()
    encoder.load_state_dict(encoder_state_from_decoder(decoder.state_dict()), strict=False)
    tokens = torch.tensor([[5, 9, 33, 12, 70]])
    with torch.no_grad():
        expected = decoder(input_ids=tokens).logits[:, -1]
        got = encoder(input_ids=tokens, attention_mask=torch.ones_like(tokens)).logits[:, -1]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
