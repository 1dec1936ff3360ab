import pytest

from tunekit.benchmark.collation import format_markdown, time_collators
from tunekit.errors import TunekitError
from tunekit.tokenizer_training import train_wordpiece

TEXTS = [f"review {i} was {'great fun' if i % 2 else 'an awful bore'} and long enough" for i in range(300)]


def test_both_collators_are_timed_on_each_shape_and_tabled():
    tokenizer = train_wordpiece(TEXTS, vocab_size=120, model_max_length=64)
    rows = time_collators(tokenizer, TEXTS, [(8, 32), (4, 64)], repeats=3)
    assert [(row.batch_size, row.block_size) for row in rows] == [(8, 32), (4, 64)]
    assert all(row.tunekit_ms > 0 and row.stock_ms > 0 for row in rows)
    table = format_markdown(rows)
    assert table.count("\n") == 4 and f"| 8 × 32 | {rows[0].tunekit_ms:.1f} |" in table
    with pytest.raises(TunekitError, match="fewer than 10000"):
        time_collators(tokenizer, TEXTS, [(10_000, 32)], repeats=1)
