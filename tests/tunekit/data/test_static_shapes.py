"""Static shapes: the padded masked-only MLM step equals the tight one, and its shapes never move."""

import math

import pytest
import torch
from transformers import AutoModelForMaskedLM

from tests.tunekit.models.test_last_layer import (
    assert_same_gradients,
    gradients,
    mlm_labels,
    padded_batch,
    tiny,
)
from tunekit.data.collators import padding_collator
from tunekit.data.masking import mlm_collator
from tunekit.data.static_shapes import (
    LENGTH_BUCKET,
    MASKED_LABELS,
    binomial_cap,
    masked_caps,
    padded_length,
    static_masked_batch_keys,
    wants_static_shapes,
)
from tunekit.data.tokenization import BLOCK_ID
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.models.mlm_head import (
    MASKED_POSITIONS,
    MASKED_ROWS,
    MASKED_SLOTS,
    install_masked_only_head,
    masked_batch_keys,
)
from tunekit.training.step import summed_loss


def test_binomial_cap_is_the_exact_tail_quantile():
    # Binomial(10, 1/2): P(X > 7) = 56/1024 > 5 %, P(X > 8) = 11/1024 <= 5 %.
    assert binomial_cap(10, 0.5, tolerance=0.05) == 8
    # Over 5 draws the budget per draw is 1 %: P(X > 8) = 1.07 % is too much, P(X > 9) = 0.1 % is not.
    assert binomial_cap(10, 0.5, draws=5, tolerance=0.05) == 9
    assert binomial_cap(10, 0.0) == 0 and binomial_cap(10, 1.0) == 10
    caps = masked_caps(rows=32, length=512, probability=0.15)
    mean, sd = 512 * 0.15, math.sqrt(512 * 0.15 * 0.85)
    # Rare enough to hold for thousands of steps, tight enough to waste little.
    assert mean + 3 * sd < caps.width <= mean + 6 * sd and caps.width % 8 == 0
    assert 32 * mean < caps.total <= 32 * mean + 5 * math.sqrt(32) * sd and caps.total % 8 == 0


def loss_and_grads(model, batch, keys: dict) -> tuple[torch.Tensor, dict]:
    model.zero_grad()
    inputs = {key: value for key, value in keys.items() if key != MASKED_LABELS}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **inputs).logits
    sums, counts = summed_loss(logits, batch["labels"], keys[MASKED_POSITIONS], keys.get(MASKED_LABELS))
    (sums.sum() / counts.sum()).backward()
    return sums.detach(), gradients(model)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "modernbert"])
def test_padded_masked_step_gives_the_variable_width_loss_and_gradients(model_type):
    model = tiny(AutoModelForMaskedLM, model_type)
    assert install_masked_only_head(model)
    batch = padded_batch()
    batch["labels"] = mlm_labels(batch["input_ids"])
    tight = masked_batch_keys(batch["labels"])
    padded = static_masked_batch_keys(batch["labels"], 0.2)
    targets = int((batch["labels"] != -100).sum())
    assert (
        padded[MASKED_POSITIONS].shape[0] > targets
        and padded[MASKED_ROWS].shape[1] > tight[MASKED_ROWS].shape[1]
    )
    assert (padded[MASKED_LABELS][targets:] == -100).all()
    tight_loss, tight_grads = loss_and_grads(model, batch, tight)
    padded_loss, padded_grads = loss_and_grads(model, batch, padded)
    torch.testing.assert_close(padded_loss, tight_loss, rtol=1e-6, atol=1e-6)
    for name, grad in tight_grads.items():
        torch.testing.assert_close(padded_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    # The dense model agrees too (the tight path's own test holds it there).
    model.zero_grad()
    dense = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    dense_sums, _ = summed_loss(dense, batch["labels"])
    torch.testing.assert_close(padded_loss, dense_sums.detach(), rtol=1e-5, atol=1e-5)


def test_a_batch_past_the_cap_pads_to_a_coarse_bucket_and_still_agrees():
    model = tiny(AutoModelForMaskedLM, "bert")
    install_masked_only_head(model)
    batch = padded_batch()
    batch["labels"] = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)  # all masked
    keys = static_masked_batch_keys(batch["labels"], 0.01)  # the caps expect almost nothing
    # 63 targets: the next multiple of 64; the rows can be no wider than the 24 positions.
    assert keys[MASKED_ROWS].shape == (3, 24) and keys[MASKED_POSITIONS].shape == (64,)
    loss, grads = loss_and_grads(model, batch, keys)
    tight_loss, tight_grads = loss_and_grads(model, batch, masked_batch_keys(batch["labels"]))
    torch.testing.assert_close(loss, tight_loss, rtol=1e-6, atol=1e-6)
    assert_same_gradients(grads, tight_grads)


def test_mlm_collator_shapes_are_constant_over_50_batches():
    texts = [f"review {i} was {'great' if i % 3 else 'awful'} and long" for i in range(50)]
    tokenizer = train_wordpiece(texts, vocab_size=120, model_max_length=128)
    generator = torch.Generator().manual_seed(0)
    static, tight = (
        mlm_collator(tokenizer, 0.15, seed=1, static_shapes=True),
        mlm_collator(tokenizer, 0.15, 1),
    )
    seen, tight_widths = set(), set()
    for step in range(50):
        ids = torch.randint(5, len(tokenizer), (16, 128), generator=generator).tolist()
        blocks = [{"input_ids": row, BLOCK_ID: step * 16 + i} for i, row in enumerate(ids)]
        batch = static([dict(block) for block in blocks])
        reference = tight([dict(block) for block in blocks])
        seen.add(tuple((key, tuple(value.shape)) for key, value in sorted(batch.items())))
        tight_widths.add((reference[MASKED_POSITIONS].shape[0], reference[MASKED_ROWS].shape[1]))
        # The same targets in the same order, then padding.
        count = reference[MASKED_POSITIONS].shape[0]
        assert torch.equal(batch[MASKED_POSITIONS][:count], reference[MASKED_POSITIONS])
        assert torch.equal(batch["labels"], reference["labels"])
        width = batch[MASKED_ROWS].shape[1]
        slots = reference[MASKED_SLOTS]
        rows_at = reference[MASKED_ROWS].reshape(-1)[slots]
        assert torch.equal(batch[MASKED_ROWS].reshape(-1)[batch[MASKED_SLOTS][:count]], rows_at)
        assert torch.equal(batch[MASKED_SLOTS][:count] // width, slots // reference[MASKED_ROWS].shape[1])
    assert len(seen) == 1  # one shape for every tensor of every batch
    assert len(tight_widths) > 10  # where the unpadded layout changed nearly every batch


def test_fine_tuning_pads_to_length_buckets_under_static_shapes():
    tokenizer = train_wordpiece(["a b c d"] * 5, vocab_size=40, model_max_length=512)
    rows = [{"input_ids": list(range(1, n + 1)), "labels": 0} for n in (30, 70, 12)]
    bucketed = padding_collator(tokenizer, "bf16", length_buckets=True, max_length=100)
    assert bucketed(rows)["input_ids"].shape == (3, 100)  # 128 would pass max_length
    assert bucketed(rows[::2])["input_ids"].shape == (2, LENGTH_BUCKET)
    assert padding_collator(tokenizer, "bf16")(rows[::2])["input_ids"].shape == (2, 32)
    assert padded_length(65, 64, 512) == 128 and padded_length(600, 64, 512) == 600
    assert padded_length(65, None, 512) == 65
    assert wants_static_shapes(True, torch.device("cpu")) and not wants_static_shapes(
        False, torch.device("cpu")
    )
    assert wants_static_shapes(False, torch.device("cuda"))
