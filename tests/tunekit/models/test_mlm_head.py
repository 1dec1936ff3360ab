import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM

from tests.conftest import TWO_LAYERS
from tunekit.config.arguments import ENCODER_TYPES
from tunekit.models.mlm_head import install_masked_only_head, masked_positions, supports_masked_only_head
from tunekit.training.step import summed_loss

SIZES = TWO_LAYERS
DISTILBERT_SIZES = {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}
NO_DROPOUT = {
    "modernbert": {"embedding_dropout": 0.0, "mlp_dropout": 0.0, "attention_dropout": 0.0},
    "bert": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "roberta": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "distilbert": {"dropout": 0.0, "attention_dropout": 0.0},
}


def tiny_masked_lm(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    sizes = DISTILBERT_SIZES if model_type == "distilbert" else SIZES
    config = AutoConfig.for_model(
        model_type,
        vocab_size=128,
        max_position_embeddings=64,
        pad_token_id=0,
        **sizes,
        **NO_DROPOUT[model_type],
    )
    return AutoModelForMaskedLM.from_config(config).train()


def mlm_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 128, (3, 24), generator=generator)
    labels = torch.full_like(input_ids, -100)
    chosen = torch.rand(input_ids.shape, generator=generator) < 0.2
    chosen[2] = False  # an example without targets contributes nothing
    chosen[0, 0] = True
    labels[chosen] = input_ids[chosen]
    return input_ids, labels


def loss_and_grads(model: torch.nn.Module, sparse: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    input_ids, labels = mlm_batch()
    model.zero_grad()
    if sparse:
        positions = masked_positions(labels)
        logits = model(input_ids=input_ids, masked_positions=positions).logits
        assert logits.shape[:2] == (1, len(positions))  # the head ran on the masked rows only
        sums, counts = summed_loss(logits, labels, positions)
    else:
        logits = model(input_ids=input_ids).logits
        assert logits.shape[:2] == input_ids.shape
        sums, counts = summed_loss(logits, labels)
    (sums.sum() / counts.sum()).backward()
    return sums.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("model_type", ENCODER_TYPES)
def test_masked_only_head_gives_the_dense_loss_and_gradients(model_type):
    model = tiny_masked_lm(model_type)
    keys = set(model.state_dict())
    dense_loss, dense_grads = loss_and_grads(model, sparse=False)
    assert install_masked_only_head(model) and install_masked_only_head(model)  # idempotent
    sparse_loss, sparse_grads = loss_and_grads(model, sparse=True)
    torch.testing.assert_close(sparse_loss, dense_loss, rtol=1e-5, atol=1e-5)
    assert sparse_loss[2] == 0 and dense_loss[0] > 0
    assert sparse_grads.keys() == dense_grads.keys()
    for name, grad in dense_grads.items():
        torch.testing.assert_close(sparse_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # No new weights or keys, and a call without positions is the stock dense forward again.
    assert set(model.state_dict()) == keys
    again, _ = loss_and_grads(model, sparse=False)
    torch.testing.assert_close(again, dense_loss)


def test_only_masked_language_models_get_the_head():
    from transformers import BertConfig, BertForSequenceClassification

    from tunekit.models.lstm import LSTMConfig
    from tunekit.models.lstm_lm import LSTMForLanguageModeling

    classifier = BertForSequenceClassification(BertConfig(**SIZES, vocab_size=64))
    lstm = LSTMForLanguageModeling(LSTMConfig(vocab_size=64, hidden_size=8, num_hidden_layers=1))
    assert not supports_masked_only_head(classifier) and not install_masked_only_head(lstm)


def test_native_dtype_cross_entropy_matches_fp32():
    """bf16 logits go into cross-entropy as they are (no fp32 copy); the result stays close to fp32's."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 16, 2048, generator=generator) * 3
    labels = torch.randint(0, 2048, (4, 16), generator=generator)
    labels[:, ::3] = -100
    fp32, counts = summed_loss(logits, labels)
    bf16, _ = summed_loss(logits.bfloat16(), labels)
    assert bf16.dtype == torch.float32 and counts.tolist() == [10] * 4
    torch.testing.assert_close(bf16, fp32, rtol=2e-2, atol=0)
