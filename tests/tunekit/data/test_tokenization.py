"""Tokenizer training and reload, packing into blocks, classification features."""

import pytest
from datasets import Dataset

from tests.tunekit.data.conftest import ROWS
from tunekit.data.tokenization import (
    BLOCK_ID,
    load_tokenizer,
    tokenize_and_pack,
    tokenize_for_classification,
)
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError


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


def test_classification_features_truncate_and_keep_labels(tokenizer):
    dataset = Dataset.from_list(ROWS)
    features = tokenize_for_classification(dataset, tokenizer, "text", "label", max_length=5)
    assert max(len(ids) for ids in features["input_ids"]) == 5
    assert features["labels"] == dataset["label"]
