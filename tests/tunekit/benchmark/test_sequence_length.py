"""The sequence-length benchmark at tiny sizes: equal parameters, one row per model and T, outputs."""

import json

import pytest

from tunekit.benchmark.sequence_length import (
    SequenceLengthArguments,
    build_lstm,
    build_transformer,
    measure,
    non_embedding_parameters,
    solve_lstm_hidden_size,
)
from tunekit.benchmark.sequence_length_report import write_outputs
from tunekit.errors import TunekitError

TINY = {
    "lengths": [8, 16],
    "batch_tokens": 32,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
    "warmup": 1,
    "repeats": 2,
    "device": "cpu",
}


def test_lstm_is_sized_to_the_transformers_non_embedding_parameters():
    args = SequenceLengthArguments(**{**TINY, "hidden_size": 64, "intermediate_size": 256})
    target = non_embedding_parameters(build_transformer(args))
    hidden = solve_lstm_hidden_size(args, target)
    counts = [non_embedding_parameters(build_lstm(args, h)) for h in (hidden - 1, hidden, hidden + 1)]
    # The closest hidden size: its neighbours are no closer to the transformer's count.
    assert abs(counts[1] - target) <= min(abs(counts[0] - target), abs(counts[2] - target))
    assert abs(counts[1] - target) / target < 0.02


@pytest.mark.parametrize("transformer_type", ["bert", "modernbert"])
def test_benchmark_writes_a_row_per_model_and_length_a_table_and_a_plot(tmp_path, transformer_type):
    args = SequenceLengthArguments(**TINY, transformer_type=transformer_type, output_dir=str(tmp_path))
    measured = measure(args)
    rows = {(row["model"], row["seq_len"]): row for row in measured["rows"]}
    transformer = f"transformer ({transformer_type})"
    assert set(rows) == {(model, t) for model in (transformer, "LSTM") for t in (8, 16)}
    for (model, length), row in rows.items():
        assert row["tokens_per_step"] == 32 and row["batch_size"] == 32 // length
        assert len(row["step_seconds_all"]) == 2 and row["microseconds_per_token"] > 0
        assert row["sequential_depth"] == (length if model == "LSTM" else 1)
    paths = write_outputs(measured, tmp_path, "python scripts/sequence_length.py --lengths 8 16")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = paths["md"].read_text()
    assert "| 8 | 4 |" in table and "| 16 | 2 |" in table and "Sequential depth" in table
    assert json.loads(paths["json"].read_text())["command"].startswith("python scripts/sequence_length.py")


def test_bf16_autocast_runs_and_bad_arguments_name_their_field():
    measured = measure(SequenceLengthArguments(**{**TINY, "lengths": [8], "precision": "bf16", "repeats": 1}))
    assert len(measured["rows"]) == 2
    with pytest.raises(TunekitError, match="batch_tokens"):
        SequenceLengthArguments(lengths=[64, 1024], batch_tokens=512)
    with pytest.raises(TunekitError, match="precision"):
        SequenceLengthArguments(precision="fp16")
