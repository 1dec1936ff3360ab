"""ModernBERT's local layers without a (B, 1, T, T) mask: the dense masked attention's results."""

import copy

import pytest
import torch
from torch.nn.functional import scaled_dot_product_attention
from transformers import AutoConfig, AutoModelForMaskedLM

import tunekit.models.attention_masks as attention_masks
from tunekit.data.static_shapes import MASKED_LABELS, static_masked_batch_keys
from tunekit.models.local_attention import windowed_attention
from tunekit.models.mlm_head import install_masked_only_head
from tunekit.training.step import summed_loss


@pytest.mark.parametrize(
    ("length", "half_window", "chunk", "transposed"),
    [
        (24, 4, None, False),
        (37, 5, 8, False),
        (33, 3, 16, False),
        (10, 32, None, False),
        # ModernBERT hands over (B, T, H, D) views transposed to (B, H, T, D); with T a multiple of
        # the chunk (512 = 8 x 64, the IMDb recipes' T and window) nothing is padded or copied.
        (64, 8, 16, True),
        (512, 64, None, True),
    ],
)
def test_windowed_attention_is_the_dense_masked_attention(length, half_window, chunk, transposed):
    generator = torch.Generator().manual_seed(length)
    shape = (2, length, 3, 8) if transposed else (2, 3, length, 8)
    leaves = [torch.randn(shape, generator=generator, requires_grad=True) for _ in range(3)]
    query, key, value = (leaf.transpose(1, 2) if transposed else leaf for leaf in leaves)
    positions = torch.arange(length)
    band = (positions[:, None] - positions[None, :]).abs() <= half_window
    dense = scaled_dot_product_attention(query, key, value, attn_mask=band)
    windowed = windowed_attention(query, key, value, half_window, chunk=chunk)
    torch.testing.assert_close(windowed, dense, rtol=1e-5, atol=1e-6)
    weights = torch.randn(dense.shape, generator=generator)
    expected = torch.autograd.grad((dense * weights).sum(), (query, key, value))
    got = torch.autograd.grad((windowed * weights).sum(), (query, key, value))
    for grad, reference in zip(got, expected, strict=True):
        torch.testing.assert_close(grad, reference, rtol=1e-5, atol=1e-6)


def modernbert(layers: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        "modernbert",
        vocab_size=128,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        local_attention=8,  # +-4 keys over 40 tokens: the window matters
        embedding_dropout=0.0,
        mlp_dropout=0.0,
        attention_dropout=0.0,
    )
    return AutoModelForMaskedLM.from_config(config).train()


def loss_and_grads(model, input_ids, labels, keys) -> tuple[torch.Tensor, dict]:
    model.zero_grad()
    inputs = {key: value for key, value in keys.items() if key != MASKED_LABELS}
    logits = model(input_ids=input_ids, **inputs).logits
    sums, counts = summed_loss(logits, labels, keys.get("masked_positions"), keys.get(MASKED_LABELS))
    (sums.sum() / counts.sum()).backward()
    return sums.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


# 48 tokens are three whole chunks of 16: the queries reach the windowed attention unpadded.
@pytest.mark.parametrize("length", [40, 48])
def test_packed_blocks_build_no_sliding_mask_and_train_as_the_stock_model(monkeypatch, length):
    stock = modernbert()  # layers: global, then sliding-window (the last, run at the targets only)
    assert stock.config.layer_types == ["full_attention", "sliding_attention"]
    ours = copy.deepcopy(stock)
    assert attention_masks.install_known_padding_masks(ours) and install_masked_only_head(ours)
    windowed = []
    original = attention_masks.windowed_attention
    monkeypatch.setattr(
        attention_masks,
        "windowed_attention",
        lambda *a, **k: windowed.append(a[0].shape) or original(*a, **k),
    )
    built = []
    sdpa_mask = attention_masks.sdpa_mask
    monkeypatch.setattr(
        attention_masks, "sdpa_mask", lambda *a, **k: built.append(sdpa_mask(*a, **k)) or built[-1]
    )
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(5, 128, (3, length), generator=generator)
    labels = torch.where(torch.rand(input_ids.shape, generator=generator) < 0.2, input_ids, -100)
    dense_loss, dense_grads = loss_and_grads(stock, input_ids, labels, {})
    for keys in (static_masked_batch_keys(labels, 0.2), {}):  # the rows-only last layer, then all rows
        loss, grads = loss_and_grads(ours, input_ids, labels, keys)
        torch.testing.assert_close(loss, dense_loss, rtol=1e-5, atol=1e-5)
        for name, grad in dense_grads.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # No mask at all for an unpadded batch: the global layers' is skipped, the local one's never asked.
    assert built == [None, None]
    assert windowed == [(3, 2, length, 16)]  # the dense pass's local layer; the rows-only pass has its band


def test_a_padded_batch_still_builds_and_applies_the_sliding_mask():
    stock = modernbert()
    ours = copy.deepcopy(stock)
    attention_masks.install_known_padding_masks(ours)
    input_ids = torch.randint(5, 128, (2, 40), generator=torch.Generator().manual_seed(4))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 30:] = 0
    input_ids[attention_mask == 0] = 0
    with torch.no_grad():
        expected = stock(input_ids=input_ids, attention_mask=attention_mask).logits
        got = ours(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(
        got[attention_mask.bool()], expected[attention_mask.bool()], rtol=1e-5, atol=1e-5
    )
