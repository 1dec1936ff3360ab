"""The tiny WordPiece tokenizer the data tests share, trained once per module on labeled rows."""

import pytest

from tunekit.data.tokenizer_training import train_wordpiece

ROWS = [{"text": f"review number {i} was {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(40)]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [r["text"] for r in ROWS] * 5
    return train_wordpiece(texts, vocab_size=200, model_max_length=64)
