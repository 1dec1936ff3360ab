import json

import pytest
import torch
import transformers.masking_utils as masking_utils
from transformers import AutoConfig, AutoModelForSequenceClassification

from tests.conftest import TWO_LAYERS
from tunekit.models.attention_masks import KNOWN_PADDING_SDPA, install_known_padding_masks
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification

SIZES = dict(vocab_size=100, **TWO_LAYERS)
CONFIGS = {
    "bert": SIZES,
    "roberta": SIZES,
    # two layers: one global, one with a 4-token sliding window, which a 12-token batch exceeds
    "modernbert": {**SIZES, "local_attention": 4, "global_attn_every_n_layers": 2},
    "distilbert": dict(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    "gpt2": dict(vocab_size=100, n_embd=32, n_layer=2, n_head=2),
    "llama": SIZES,
}


def classifier(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, pad_token_id=0, **CONFIGS[model_type])
    return AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").eval()


@pytest.fixture
def mask_questions(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each time an SDPA mask builder tests a padding mask for all-ones (a host read on a GPU)."""
    asked: list[bool] = []
    for name in ("_ignore_bidirectional_mask_sdpa", "_ignore_causal_mask_sdpa"):
        original = getattr(masking_utils, name)

        def asking(padding_mask, *args, _original=original, **kwargs):
            if padding_mask is not None:
                asked.append(True)
            return _original(padding_mask, *args, **kwargs)

        monkeypatch.setattr(masking_utils, name, asking)
    return asked


@pytest.mark.parametrize("model_type", list(CONFIGS))
def test_padded_batches_get_the_same_logits_without_the_all_ones_question(
    model_type, mask_questions, tmp_path
):
    model = classifier(model_type)
    input_ids = torch.randint(1, 100, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 7:] = 0
    input_ids[0, 7:] = 0
    with torch.no_grad():
        stock = model(input_ids=input_ids, attention_mask=attention_mask).logits
        unpadded = model(input_ids=input_ids[1:]).logits
    assert mask_questions  # the stock builder asks

    mask_questions.clear()
    assert install_known_padding_masks(model) and model.config._attn_implementation == KNOWN_PADDING_SDPA
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids, attention_mask=attention_mask).logits, stock)
        # an all-ones mask (only a caller outside the loop passes one) is applied, masking nothing
        torch.testing.assert_close(
            model(input_ids=input_ids[1:], attention_mask=attention_mask[1:]).logits, unpadded
        )
        torch.testing.assert_close(model(input_ids=input_ids[1:]).logits, unpadded)
    assert mask_questions == []

    model.save_pretrained(tmp_path)
    assert KNOWN_PADDING_SDPA not in json.loads((tmp_path / "config.json").read_text()).values()
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config._attn_implementation == "sdpa"


def test_other_attention_implementations_and_the_lstm_are_left_alone():
    config = AutoConfig.for_model("bert", **SIZES)
    eager = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    assert not install_known_padding_masks(eager) and eager.config._attn_implementation == "eager"
    lstm = LSTMForSequenceClassification(LSTMConfig(vocab_size=50, hidden_size=8))
    assert not install_known_padding_masks(lstm)


def test_masked_attention_on_cuda_leaves_out_cudnn_and_nothing_else_changes():
    from types import SimpleNamespace

    from torch.nn.attention import SDPBackend

    from tunekit.models.attention_masks import masked_attention_backends

    on_cuda, on_cpu = SimpleNamespace(device=torch.device("cuda")), torch.zeros(1)
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    backends = masked_attention_backends(on_cuda, mask)
    assert SDPBackend.CUDNN_ATTENTION not in backends and SDPBackend.EFFICIENT_ATTENTION in backends
    assert masked_attention_backends(on_cuda, None) is None  # packed batches keep torch's choice
    assert masked_attention_backends(on_cpu, mask) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN's masked SDPA backward needs a GPU")
def test_masked_attention_has_finite_query_gradients_at_a_length_of_64_mod_128():
    # pytorch/pytorch#196678: cuDNN's backward gives NaN grad_q here (a padded length of 320, and
    # query rows that attend to nothing, as ModernBERT's padding queries beyond their window do).
    from tunekit.models.attention_masks import _attention

    torch.manual_seed(0)
    length, real = 320, 200
    query, key, value = (
        torch.randn(2, 4, length, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    )
    positions = torch.arange(length, device="cuda")
    window = (positions[:, None] - positions[None, :]).abs() <= 64
    mask = (window & (positions[None, :] < real))[None, None].expand(2, 1, length, length)
    module = torch.nn.Module()
    module.is_causal = False
    output, _ = _attention(module, query, key, value, mask, dropout=0.0, scaling=None, is_causal=False)
    output[:, :real].float().sum().backward()
    assert torch.isfinite(query.grad).all() and torch.isfinite(key.grad).all()
