from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

import tunekit.models.cpu_dropout as cpu_dropout_module
from tests.conftest import TWO_LAYERS
from tunekit.models.cpu_dropout import CPUDropout, attention_with_cpu_dropout, install_cpu_dropout, keep_mask


def test_the_keep_mask_is_bernoulli_one_minus_p_and_follows_the_seed():
    torch.manual_seed(0)
    first = keep_mask((64, 4, 100, 100), 0.1)
    assert first.dtype == torch.bool and first.shape == (64, 4, 100, 100)
    assert first.float().mean().item() == pytest.approx(0.9, abs=2e-3)  # 2.56M draws: sd 2e-4
    # lanes of one random word are independent: neighbours agree as often as chance says
    agree = (first[..., 1:] == first[..., :-1]).float().mean().item()
    assert agree == pytest.approx(0.9**2 + 0.1**2, abs=2e-3)
    assert keep_mask((7,), 0.5).shape == (7,)  # counts that are not a multiple of four
    torch.manual_seed(0)
    assert torch.equal(keep_mask((64, 4, 100, 100), 0.1), first)  # torch's generator: seeded, resumable
    assert not torch.equal(keep_mask((64, 4, 100, 100), 0.1), first)


def test_cpu_dropout_keeps_or_zeroes_with_torchs_scaling_and_is_identity_in_eval():
    dropout = CPUDropout(0.25)
    values = torch.randn(4096, requires_grad=True)
    dropped = dropout(values)
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], values[kept] / 0.75)
    assert kept.float().mean().item() == pytest.approx(0.75, abs=0.03)
    dropped.sum().backward()
    torch.testing.assert_close(values.grad, kept.float() / 0.75)
    assert torch.equal(dropout.eval()(values), values)


def recorded_masks(monkeypatch) -> list[torch.Tensor]:
    masks: list[torch.Tensor] = []
    draw = cpu_dropout_module.keep_mask

    def recording(shape, p):
        masks.append(draw(shape, p))
        return masks[-1]

    monkeypatch.setattr(cpu_dropout_module, "keep_mask", recording)
    return masks


@pytest.mark.parametrize("case", ["padding", "causal", "grouped-query", "no-mask"])
def test_attention_equals_torchs_math_attention_with_the_same_dropout_mask(case, monkeypatch):
    torch.manual_seed(0)
    batch, heads, length, head_dim, p = 3, 4, 10, 8, 0.2
    query = torch.randn(batch, heads, length, head_dim, requires_grad=True)
    key_heads = 2 if case == "grouped-query" else heads
    key, value = (torch.randn(batch, key_heads, length, head_dim, requires_grad=True) for _ in range(2))
    mask = None
    if case in ("padding", "grouped-query"):
        mask = torch.ones(batch, 1, length, length, dtype=torch.bool)
        mask[0, ..., 6:] = False
    module = SimpleNamespace(is_causal=case == "causal")
    masks = recorded_masks(monkeypatch)
    ours, _ = attention_with_cpu_dropout(module, query, key, value, mask, dropout=p, scaling=0.3)
    (dropout_mask,) = masks
    # the math op takes the additive form of a boolean mask (F.scaled_dot_product_attention converts)
    additive = None if mask is None else torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    expected, _ = torch.ops.aten._scaled_dot_product_attention_math(
        query,
        key,
        value,
        additive,
        p,
        case == "causal",
        dropout_mask,
        scale=0.3,
        enable_gqa=case == "grouped-query",
    )
    torch.testing.assert_close(ours, expected.transpose(1, 2))
    grads = torch.autograd.grad(ours.square().sum(), (query, key, value))
    expected_grads = torch.autograd.grad(expected.transpose(1, 2).square().sum(), (query, key, value))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_attention_without_dropout_is_transformers_sdpa(monkeypatch):
    masks = recorded_masks(monkeypatch)
    query, key, value = (torch.randn(2, 2, 5, 4) for _ in range(3))
    module = SimpleNamespace(is_causal=False)
    output, _ = attention_with_cpu_dropout(module, query, key, value, None, dropout=0.0)
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value).transpose(1, 2)
    torch.testing.assert_close(output, expected)
    assert not masks


def test_install_swaps_every_dropout_and_leaves_weights_and_eval_outputs_alone():
    config = AutoConfig.for_model("bert", vocab_size=100, **TWO_LAYERS)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    input_ids = torch.randint(1, 100, (2, 9))
    before, state = model(input_ids).logits, {k: v.clone() for k, v in model.state_dict().items()}
    dropouts = sum(type(module) is nn.Dropout for module in model.modules())
    assert install_cpu_dropout(model) == dropouts > 0
    assert not any(type(module) is nn.Dropout for module in model.modules())
    torch.testing.assert_close(model(input_ids).logits, before)
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())
    model.train()(input_ids).logits.sum().backward()  # trains through the swapped modules
