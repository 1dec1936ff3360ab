"""Tokenizer training and reload, MLM packing and masking, classification features, padding."""

import copy
import os
import random

import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

from tunekit.data.tokenization import (
    BLOCK_ID,
    PaddingCollator,
    load_tokenizer,
    mlm_collator,
    padding_collator,
    tokenize_and_pack,
    tokenize_for_classification,
)
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError

ROWS = [{"text": f"review number {i} was {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(40)]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [r["text"] for r in ROWS] * 5
    return train_wordpiece(texts, vocab_size=200, model_max_length=64)


def test_tokenizer_training_is_reproducible():
    texts = [r["text"] for r in ROWS] * 3 + ["glorvenak tesmirak pludak kravolen"] * 2
    vocabularies = [train_wordpiece(texts, vocab_size=60, model_max_length=32).get_vocab() for _ in range(3)]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]


def test_tokenizer_training_and_reload(tokenizer, tmp_path):
    encoded = tokenizer("review number 3 was great")
    assert (
        encoded["input_ids"][0] == tokenizer.cls_token_id
        and encoded["input_ids"][-1] == tokenizer.sep_token_id
    )
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token == "[MASK]"
    tokenizer.save_pretrained(tmp_path)
    reloaded = load_tokenizer(str(tmp_path))
    assert reloaded("review number 3 was great")["input_ids"] == encoded["input_ids"]
    assert reloaded.mask_token_id == tokenizer.mask_token_id
    with pytest.raises(TunekitError, match="tokenizer_name_or_path"):
        load_tokenizer(str(tmp_path / "missing"))


def test_packing_makes_full_cls_sep_blocks(tokenizer):
    dataset = Dataset.from_list(ROWS)
    blocks = tokenize_and_pack(dataset, tokenizer, "text", block_size=16)
    stream = sum(
        (
            tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
            for t in dataset["text"]
        ),
        [],
    )
    assert len(blocks) == len(stream) // 14
    assert all(
        len(ids) == 16 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        for ids in blocks["input_ids"]
    )
    assert blocks["input_ids"][0][1:15] == stream[:14]  # packing keeps the text in order
    assert blocks[BLOCK_ID] == list(range(len(blocks)))
    with pytest.raises(TunekitError, match="shorter than one block"):
        tokenize_and_pack(dataset.select(range(1)), tokenizer, "text", block_size=64)


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


def test_classification_features_truncate_and_keep_labels(tokenizer):
    dataset = Dataset.from_list(ROWS)
    features = tokenize_for_classification(dataset, tokenizer, "text", "label", max_length=5)
    assert max(len(ids) for ids in features["input_ids"]) == 5
    assert features["labels"] == dataset["label"]


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
