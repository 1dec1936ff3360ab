"""The gradient-flow probe: one norm per position, causal (the target itself gets none), fp32 vs
bf16 recurrence on the same weights, the model left as it was; and its plot."""

import math

import pytest
import torch

from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.gradient_flow import input_gradient_norms, plot_gradient_flow


@pytest.fixture
def language_model() -> LSTMForLanguageModeling:
    torch.manual_seed(0)
    return LSTMForLanguageModeling(LSTMConfig(vocab_size=50, hidden_size=16, dropout=0.0))


def test_norms_per_position_are_causal_and_differ_only_slightly_in_bf16(language_model):
    input_ids = torch.randint(1, 50, (4, 24), generator=torch.Generator().manual_seed(0))
    fp32 = input_gradient_norms(language_model, input_ids, autocast_bf16=False, fp32_recurrence=True)
    bf16 = input_gradient_norms(language_model, input_ids, autocast_bf16=True, fp32_recurrence=False)
    assert len(fp32) == len(bf16) == 24
    # The forward state at T-2 has not read token T-1, so the target's own input gets no gradient.
    assert fp32[-1] == 0 and bf16[-1] == 0
    assert all(value > 0 and math.isfinite(value) for value in fp32[:-1] + bf16[:-1])
    # The nearest input matters most, and bf16 rounding changes the norms without breaking them.
    assert fp32[-2] == max(fp32)
    assert fp32 != bf16
    assert bf16[-2] == pytest.approx(fp32[-2], rel=0.1)
    # The model is left as it was: its own recurrence setting, training mode, no gradients.
    assert language_model.config.fp32_recurrence is True and language_model.training
    assert all(p.grad is None for p in language_model.parameters())


def test_without_autocast_the_bf16_probe_rounds_the_recurrence_and_restores_the_model(language_model):
    input_ids = torch.randint(1, 50, (4, 24), generator=torch.Generator().manual_seed(1))
    fp32 = input_gradient_norms(language_model, input_ids, autocast_bf16=False, fp32_recurrence=True)
    rounded = input_gradient_norms(language_model, input_ids, autocast_bf16=False, fp32_recurrence=False)
    real = input_gradient_norms(language_model, input_ids, autocast_bf16=True, fp32_recurrence=False)
    assert rounded != fp32
    assert rounded[-2] == pytest.approx(fp32[-2], rel=0.1) and rounded[0] == pytest.approx(real[0], rel=0.1)
    assert language_model.config.recurrence_rounding is None and language_model.config.fp32_recurrence


def test_the_probe_refuses_a_classifier_and_a_single_token(language_model, tmp_path):
    classifier = LSTMForSequenceClassification(LSTMConfig(vocab_size=50, hidden_size=8, num_labels=2))
    with pytest.raises(TunekitError, match="model:"):
        input_gradient_norms(
            classifier, torch.ones(1, 4, dtype=torch.long), autocast_bf16=False, fp32_recurrence=True
        )
    with pytest.raises(TunekitError, match="input_ids:"):
        input_gradient_norms(
            language_model, torch.ones(1, 1, dtype=torch.long), autocast_bf16=False, fp32_recurrence=True
        )
    path = tmp_path / "gradient_flow.png"
    plot_gradient_flow(path, {"fp32": [0.5, 0.25, 0.0], "bf16": [0.4, 0.2, 0.0]}, title="smoke")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
