"""Classification batches: padded per batch, equal to DataCollatorWithPadding, no mask when none is needed."""

import copy
import random

import pytest
import torch
from transformers import DataCollatorWithPadding

from tunekit.data.collators import PaddingCollator, padding_collator


@pytest.mark.parametrize(("mixed_precision", "width"), [("no", 11), ("bf16", 16), ("fp16", 16)])
def test_padding_is_dynamic_and_a_multiple_of_8_under_mixed_precision(tokenizer, mixed_precision, width):
    rows = [{"input_ids": list(range(1, n + 1)), "labels": 0} for n in (3, 11, 7)]
    batch = padding_collator(tokenizer, mixed_precision)(rows)
    assert batch["input_ids"].shape == (3, width) and batch["attention_mask"].sum().item() == 21


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("multiple", [None, 8])
def test_padding_collator_gives_what_data_collator_with_padding_gives(tokenizer, padding_side, multiple):
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = padding_side
    rng = random.Random(0)
    rows = [
        {"input_ids": [rng.randrange(5, 40) for _ in range(rng.randint(1, 30))], "labels": rng.randint(0, 1)}
        for _ in range(9)
    ]
    ours = PaddingCollator(tokenizer, pad_to_multiple_of=multiple)(copy.deepcopy(rows))
    stock = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)(copy.deepcopy(rows))
    assert ours.keys() == stock.keys()
    for key in ours:
        assert ours[key].dtype == stock[key].dtype and torch.equal(ours[key], stock[key])


@pytest.mark.parametrize(("multiple", "has_mask"), [(None, False), (8, True)])
def test_a_batch_without_padding_carries_no_attention_mask(tokenizer, multiple, has_mask):
    """All-ones masks are dropped on the host (transformers would find out on the device)."""
    rows = [{"input_ids": list(range(5, 11)), "labels": label} for label in (0, 1)]
    ours = PaddingCollator(tokenizer, pad_to_multiple_of=multiple)(rows)
    stock = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)(copy.deepcopy(rows))
    assert ("attention_mask" in ours) == has_mask == (not stock["attention_mask"].all().item())
    assert torch.equal(ours["input_ids"], stock["input_ids"]) and torch.equal(ours["labels"], stock["labels"])
