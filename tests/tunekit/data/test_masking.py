"""MLM masking: seeded per (seed, epoch, block), batched, equal to the stock collator block by block."""

import os

import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling

from tests.tunekit.data.conftest import ROWS
from tunekit.data.masking import mlm_collator
from tunekit.data.tokenization import (
    BLOCK_ID,
    tokenize_and_pack,
)


def test_mlm_masks_depend_only_on_seed_epoch_and_block(tokenizer):
    blocks = tokenize_and_pack(Dataset.from_list(ROWS * 3), tokenizer, "text", block_size=16)
    rows = [dict(blocks[i]) for i in range(6)]
    collator = mlm_collator(tokenizer, 0.3, seed=5)
    whole = collator([dict(r) for r in rows])
    halves = [collator([dict(r) for r in rows[:3]]), collator([dict(r) for r in rows[3:]])]
    assert whole["labels"].tolist() == halves[0]["labels"].tolist() + halves[1]["labels"].tolist()
    assert (whole["labels"] != -100).any()
    collator.set_epoch(1)
    assert collator([dict(r) for r in rows])["labels"].tolist() != whole["labels"].tolist()


@pytest.mark.parametrize(("mask_replace_prob", "random_replace_prob"), [(0.8, 0.1), (1.0, 0.0), (0.5, 0.5)])
def test_batched_mlm_masks_equal_the_stock_collator_run_block_by_block(
    tokenizer, mask_replace_prob, random_replace_prob
):
    # The stock collator on a one-block batch with that block's generator (how the masks were
    # made before the masking was batched): same inputs, labels and masked positions, bit for bit.
    blocks = tokenize_and_pack(Dataset.from_list(ROWS * 3), tokenizer, "text", block_size=16)
    rows = [dict(blocks[i]) for i in range(len(blocks))]
    rows[0]["input_ids"][3] = tokenizer.pad_token_id  # special tokens inside a block are never masked
    collator = mlm_collator(tokenizer, 0.3, seed=7)
    collator.mask_replace_prob, collator.random_replace_prob = mask_replace_prob, random_replace_prob
    collator.set_epoch(2)
    batch = collator([dict(row) for row in rows])
    stock = DataCollatorForLanguageModeling(
        tokenizer,
        mlm_probability=0.3,
        mask_replace_prob=mask_replace_prob,
        random_replace_prob=random_replace_prob,
        seed=7,
    )
    expected = []
    for row in rows:
        stock.generator, stock._generator_pid = collator.block_generator(row[BLOCK_ID]), os.getpid()
        expected.append(stock.torch_call([{"input_ids": row["input_ids"]}]))
    for key in ("input_ids", "labels"):
        assert torch.equal(batch[key], torch.cat([row[key] for row in expected])), key
    assert "attention_mask" not in batch and (batch["labels"] != -100).any()
    assert (batch["labels"][0, 3] == -100).item()
