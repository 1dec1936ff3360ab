"""The rounded recurrence (`LSTMConfig.recurrence_rounding`): without rounding it is nn.LSTM bit for
bit, forward and backward, on packed batches of mixed lengths; rounded to bf16 it lands on the real
bf16 LSTM, far closer than fp32 does; it reaches the model from the recipe and is saved with it."""

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

import tunekit  # noqa: F401  (registers the LSTM with the Auto classes)
from tunekit.config import ModelArguments, parse_recipe
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.build import build_classifier
from tunekit.models.lstm import LSTMConfig, rounded_lstm


def packed_batch(
    hidden: int, requires_grad: bool = False
) -> tuple[torch.Tensor, nn.utils.rnn.PackedSequence]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(6, 40, hidden, generator=generator).requires_grad_(requires_grad)
    lengths = torch.tensor([40, 3, 17, 40, 1, 25])  # unsorted, with ties and a single token
    return inputs, nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)


@pytest.fixture
def lstm() -> nn.LSTM:
    torch.manual_seed(0)
    return nn.LSTM(16, 16, num_layers=2, batch_first=True, bidirectional=True)


def test_without_rounding_it_is_nn_lstm_bit_for_bit_with_gradients(lstm):
    results = []
    for run in (lambda packed: lstm(packed)[0], lambda packed: rounded_lstm(lstm, packed, None)):
        inputs, packed = packed_batch(16, requires_grad=True)
        lstm.zero_grad()
        output = run(packed)
        output.data.square().sum().backward()
        results.append([output.data, inputs.grad, *(p.grad.clone() for p in lstm.parameters())])
    for ours, reference in zip(*results, strict=True):
        assert torch.equal(ours, reference)


def test_bf16_rounding_lands_on_the_real_bf16_lstm(lstm):
    _, packed = packed_batch(16)
    fp32 = lstm(packed)[0].data
    weights = {name: param.to(torch.bfloat16) for name, param in lstm.named_parameters()}
    real = torch.func.functional_call(lstm, weights, (packed._replace(data=packed.data.bfloat16()),))[0]
    real = real.data.float()
    rounded = rounded_lstm(lstm, packed, torch.bfloat16).data
    assert not torch.equal(rounded, fp32)
    # Measured: 40x closer (only the order of additions inside the matmuls differs).
    assert (rounded - real).norm() < 0.1 * (fp32 - real).norm()
    # Every value it passes on is a bf16 value.
    assert torch.equal(rounded, rounded.bfloat16().float())


def test_each_format_rounds_to_its_own_values(lstm):
    _, packed = packed_batch(16)
    fp16 = rounded_lstm(lstm, packed, torch.float16).data
    bf16 = rounded_lstm(lstm, packed, torch.bfloat16).data
    assert torch.equal(fp16, fp16.half().float()) and not torch.equal(fp16, fp16.bfloat16().float())
    assert not torch.equal(fp16, bf16)


def test_the_recipe_field_reaches_the_saved_model(tmp_path):
    tokenizer = train_wordpiece(["a good film", "a bad film"] * 10, vocab_size=60, model_max_length=32)
    args = ModelArguments(model_type="lstm", hidden_size=8, num_hidden_layers=1, dropout=0.0,
                          lstm_recurrence_rounding="bfloat16")  # fmt: skip
    model = build_classifier(args, tokenizer, ["neg", "pos"]).eval()
    inputs = tokenizer(["a good film", "bad"], padding=True, return_tensors="pt")
    rounded = model(**inputs).logits
    model.config.recurrence_rounding = None
    assert not torch.equal(rounded, model(**inputs).logits)
    model.config.recurrence_rounding = "bfloat16"
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.recurrence_rounding == "bfloat16"
    assert torch.equal(reloaded(**inputs).logits, rounded)


def test_bad_rounding_is_one_line_naming_the_field(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_type: lstm\nlstm_recurrence_rounding: fp8\n")
    with pytest.raises(TunekitError, match="lstm_recurrence_rounding"):
        parse_recipe([str(recipe)], (ModelArguments,))
    with pytest.raises(ValueError, match="recurrence_rounding"):
        LSTMConfig(recurrence_rounding="int8")
