"""The data of objective dbow: windows and rests, idf, and each document's target distribution."""

import pytest
import torch
from datasets import Dataset

from tests.tunekit.data.conftest import ROWS
from tunekit.data.document_words import (
    MIN_REST_TOKENS,
    REST_WORDS,
    TARGET_WEIGHTS,
    TARGET_WORDS,
    DocumentWordsCollator,
    inverse_document_frequency,
    split_document,
    tokenize_documents,
)
from tunekit.errors import TunekitError


def test_a_long_document_reads_its_opening_and_predicts_the_rest():
    ids = list(range(100, 100 + 20 + MIN_REST_TOKENS))
    window, rest = split_document(ids, 20)
    assert window == ids[:20] and rest == ids[20:]


def test_a_short_document_is_split_in_halves():
    ids = list(range(100, 130))
    window, rest = split_document(ids, 20)
    assert window == ids[:15] and rest == ids[15:]
    assert split_document([7, 8, 9], 20) == ([7], [8, 9])


def test_windows_are_the_fine_tuning_input_and_rests_their_distinct_other_words(tokenizer):
    long_text = " ".join(f"review number {i} was great" for i in range(20))
    rows = [{"text": long_text}, {"text": "review number 3 was awful"}, {"text": "great"}]
    documents = tokenize_documents(Dataset.from_list(rows), tokenizer, "text", max_length=16)
    assert len(documents) == 2  # a one-token document has nothing to predict
    first = documents[0]
    ids = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    assert first["input_ids"] == [tokenizer.cls_token_id, *ids[:14], tokenizer.sep_token_id]
    assert first["input_ids"] == tokenizer(long_text, truncation=True, max_length=16)["input_ids"]
    assert first[REST_WORDS] == sorted(set(ids[14:]))
    short = tokenizer("review number 3 was awful", add_special_tokens=False)["input_ids"]
    half = len(short) // 2
    assert documents[1]["input_ids"][1:-1] == short[:half]
    assert documents[1][REST_WORDS] == sorted(set(short[half:]))
    assert not set(first[REST_WORDS]) & set(tokenizer.all_special_ids)


def test_a_corpus_without_two_word_documents_is_refused(tokenizer):
    with pytest.raises(TunekitError, match="dbow"):
        tokenize_documents(Dataset.from_list([{"text": "great"}]), tokenizer, "text", max_length=16)


def test_idf_is_zero_for_words_in_every_document_and_higher_for_rarer_ones(tokenizer):
    documents = tokenize_documents(Dataset.from_list(ROWS), tokenizer, "text", max_length=16)
    idf = inverse_document_frequency(documents, len(tokenizer))
    word = tokenizer.convert_tokens_to_ids
    assert idf[word("review")] == 0.0  # in every row
    assert idf[word("great")] == pytest.approx(torch.log(torch.tensor(2.0)).item(), rel=1e-5)
    assert idf[tokenizer.pad_token_id] == 0.0


def test_targets_are_the_rest_words_weighted_by_idf_and_one_item_per_document(tokenizer):
    idf = torch.zeros(len(tokenizer))
    idf[50], idf[60], idf[61] = 3.0, 1.0, 2.0
    collator = DocumentWordsCollator(tokenizer, idf)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows = [
        {"input_ids": [cls, 9, 10, sep], REST_WORDS: [50, 60, 70]},  # 70: idf 0, weighs nothing
        {"input_ids": [cls, 9, sep], REST_WORDS: [61]},
        {"input_ids": [cls, 9, sep], REST_WORDS: [70]},  # nothing of positive idf: no item
    ]
    batch = collator(rows)
    assert batch[TARGET_WORDS].tolist() == [[50, 60, 70], [61, 0, 0], [70, 0, 0]]
    torch.testing.assert_close(
        batch[TARGET_WEIGHTS], torch.tensor([[0.75, 0.25, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    )
    assert batch["labels"].tolist() == [0, 0, -100]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0]]
    # A document's targets do not depend on the batch it sits in.
    alone = collator(rows[1:2])
    assert alone[TARGET_WORDS].tolist() == [[61]] and alone[TARGET_WEIGHTS].tolist() == [[1.0]]
