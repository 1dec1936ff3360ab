import pytest

from tunekit.benchmark.collation import (
    format_markdown,
    format_padding_markdown,
    time_collators,
    time_padding,
    variable_length_examples,
)
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError

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


def test_the_three_ways_to_pad_are_timed_on_variable_length_examples():
    tokenizer = train_wordpiece(TEXTS, vocab_size=120, model_max_length=64)
    examples = variable_length_examples(tokenizer, TEXTS, 20, 64)
    lengths = [len(example["input_ids"]) for example in examples]
    assert min(lengths) >= 8 and max(lengths) <= 64 and len(set(lengths)) > 5
    assert examples == variable_length_examples(tokenizer, TEXTS, 20, 64)  # seeded
    rows = time_padding(tokenizer, TEXTS, [4, 8], 64, repeats=3)
    assert [row.batch_size for row in rows] == [4, 8]
    assert all(min(row.tunekit_ms, row.dynamic_ms, row.pad_to_max_ms) > 0 for row in rows)
    assert format_padding_markdown(rows).count("\n") == 4
    with pytest.raises(TunekitError, match="tokens, fewer than"):
        variable_length_examples(tokenizer, TEXTS, 10_000, 64)
