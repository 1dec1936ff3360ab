import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification

from tunekit.models.last_layer import install_first_token_last_layer, install_query_rows, query_layout
from tunekit.models.mlm_head import (
    MASKED_POSITIONS,
    install_masked_only_head,
    masked_batch_keys,
    masked_positions,
)
from tunekit.training.step import summed_loss

from .test_mlm_head import NO_DROPOUT as MLM_NO_DROPOUT
from .test_mlm_head import SIZES

# The masked-only head's test sizes; classifiers also drop ModernBERT's classifier dropout.
NO_DROPOUT = {**MLM_NO_DROPOUT, "modernbert": {**MLM_NO_DROPOUT["modernbert"], "classifier_dropout": 0.0}}
# ModernBERT's last layer here is a sliding-window one; a window of 8 over 24 tokens makes its mask
# matter, so the test sees that the gathered mask rows keep it.
EXTRA = {"modernbert": {"local_attention": 8}}


def tiny(model_class, model_type: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=128,
        max_position_embeddings=64,
        pad_token_id=0,
        **SIZES,
        **NO_DROPOUT[model_type],
        **EXTRA.get(model_type, {}),
        **overrides,
    )
    return model_class.from_config(config).train()


def padded_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 128, (3, 24), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 15:] = 0  # one padded example
    input_ids[attention_mask == 0] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def mlm_labels(input_ids: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    chosen = (torch.rand(input_ids.shape, generator=generator) < 0.2) & (input_ids != 0)
    chosen[2] = False  # an example without targets
    chosen[0, 0] = chosen[0, 23] = True
    return torch.where(chosen, input_ids, -100)


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def mlm_loss_and_grads(model, batch, extra_keys: dict) -> tuple[torch.Tensor, dict]:
    model.zero_grad()
    labels = batch["labels"]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra_keys).logits
    sums, counts = summed_loss(logits, labels, extra_keys.get(MASKED_POSITIONS))
    (sums.sum() / counts.sum()).backward()
    return sums.detach(), gradients(model)


def test_query_layout_places_every_target_once():
    labels = mlm_labels(padded_batch()["input_ids"])
    rows, slots = query_layout(labels)
    positions = masked_positions(labels)
    assert rows.shape == (3, int((labels != -100).sum(1).max()))
    width = rows.shape[1]
    # Each flat target lands in its own example's row, at its own position, in the same order.
    assert torch.equal(torch.div(slots, width, rounding_mode="floor"), positions // labels.shape[1])
    assert torch.equal(rows.reshape(-1)[slots], positions % labels.shape[1])
    assert len(set(slots.tolist())) == len(slots)
    empty_rows, empty_slots = query_layout(torch.full((2, 5), -100))
    assert empty_rows.shape == (2, 1) and empty_slots.numel() == 0


@pytest.mark.parametrize("model_type", ["bert", "roberta", "modernbert"])
def test_mlm_last_layer_at_masked_rows_gives_the_dense_loss_and_gradients(model_type):
    model = tiny(AutoModelForMaskedLM, model_type)
    keys = set(model.state_dict())
    batch = padded_batch()
    batch["labels"] = mlm_labels(batch["input_ids"])
    dense_loss, dense_grads = mlm_loss_and_grads(model, batch, {})
    assert install_masked_only_head(model)
    seen = []
    model.base_model.register_forward_hook(
        lambda module, args, output: seen.append(output.last_hidden_state.shape)
    )
    extra = masked_batch_keys(batch["labels"])
    sparse_loss, sparse_grads = mlm_loss_and_grads(model, batch, extra)
    # The base model handed the head only the targets' rows; its last layer ran at (batch, width).
    assert seen == [(1, len(extra[MASKED_POSITIONS]), 32)]
    torch.testing.assert_close(sparse_loss, dense_loss, rtol=1e-5, atol=1e-5)
    assert_same_gradients(sparse_grads, dense_grads)
    assert set(model.state_dict()) == keys
    # Without the keys, every position again (what the fill-mask pipeline and the probes call).
    again, _ = mlm_loss_and_grads(model, batch, {})
    torch.testing.assert_close(again, dense_loss)


def test_the_last_layer_really_runs_at_the_rows_only():
    model = tiny(AutoModelForMaskedLM, "bert")
    install_masked_only_head(model)
    widths = []
    model.bert.encoder.layer[-1].intermediate.register_forward_hook(
        lambda m, a, out: widths.append(out.shape[1])
    )
    model.bert.encoder.layer[0].intermediate.register_forward_hook(
        lambda m, a, out: widths.append(out.shape[1])
    )
    batch = padded_batch()
    labels = mlm_labels(batch["input_ids"])
    model(**batch, **masked_batch_keys(labels))
    assert widths == [24, int((labels != -100).sum(1).max())]  # first layer: all 24; last: the widest row


CLASSIFIERS = [("bert", {}), ("roberta", {}), ("modernbert", {"classifier_pooling": "cls"})]


@pytest.mark.parametrize(("model_type", "overrides"), CLASSIFIERS)
def test_first_token_classifier_runs_its_last_layer_at_position_zero_exactly(model_type, overrides):
    model = tiny(AutoModelForSequenceClassification, model_type, num_labels=2, **overrides)
    batch = padded_batch()
    labels = torch.tensor([0, 1, 1])

    def loss_and_grads():
        model.zero_grad()
        output = model(**batch, labels=labels)
        output.loss.backward()
        return output.logits.detach(), gradients(model)

    dense_logits, dense_grads = loss_and_grads()
    assert install_first_token_last_layer(model) and install_first_token_last_layer(model)
    widths = []
    layer = model.base_model.encoder.layer[-1] if model_type != "modernbert" else model.model.layers[-1]
    (layer.intermediate if model_type != "modernbert" else layer.mlp).register_forward_hook(
        lambda m, a, out: widths.append(out.shape[1])
    )
    logits, grads = loss_and_grads()
    assert widths == [1]
    torch.testing.assert_close(logits, dense_logits, rtol=1e-5, atol=1e-5)
    assert_same_gradients(grads, dense_grads)
    # Asking for every hidden state gets the dense forward, so the states are all real.
    hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
    assert hidden.shape[1] == 24 and widths[-1] == 24


def test_models_that_read_every_position_keep_their_last_layer():
    mean_pooled = tiny(
        AutoModelForSequenceClassification, "modernbert", num_labels=2, classifier_pooling="mean"
    )
    assert not install_first_token_last_layer(mean_pooled)
    # DistilBERT's blocks are not a layer kind tunekit knows: its masked-only head still works,
    # over a last layer that runs everywhere.
    config = AutoConfig.for_model("distilbert", vocab_size=128, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    distilbert = AutoModelForMaskedLM.from_config(config)
    assert install_query_rows(distilbert) is None and install_masked_only_head(distilbert)
    batch = padded_batch()
    labels = mlm_labels(batch["input_ids"])
    logits = distilbert(**batch, **masked_batch_keys(labels)).logits
    assert logits.shape[1] == int((labels != -100).sum())


def test_gradient_checkpointing_keeps_the_stock_last_layer():
    model = tiny(AutoModelForMaskedLM, "bert")
    batch = padded_batch()
    batch["labels"] = mlm_labels(batch["input_ids"])
    dense_loss, dense_grads = mlm_loss_and_grads(model, batch, {})
    install_masked_only_head(model)
    model.gradient_checkpointing_enable()
    loss, grads = mlm_loss_and_grads(model, batch, masked_batch_keys(batch["labels"]))
    torch.testing.assert_close(loss, dense_loss, rtol=1e-5, atol=1e-5)
    assert_same_gradients(grads, dense_grads)
