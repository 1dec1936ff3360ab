"""Legs measured in separate processes join into one table, with the ratios across them."""

import json
from dataclasses import asdict

import pytest

from tunekit.benchmark.merge import merge_leg_tables
from tunekit.benchmark.table import Row, write_outputs

ROW = dict(
    task="pretraining", model="bert-base", system="tunekit", precision="bf16", compile=True, seq_len=512,
    batch_size=32, steps=30, seconds=3.0, examples_per_second=10.0, tokens_per_second=3000.0, mfu=0.4,
    peak_memory_mib=1.0, optimizer="AdamW (fused)", flops_per_token=6e8,
    attention_counted="12 layer(s) at T=512",
)  # fmt: skip


def leg(tmp_path, name: str, **changes) -> None:
    row = Row(**(ROW | changes))
    meta = {"command": f"python scripts/benchmark.py --name {name}", "wall time": "40 s", "partial": "1 of 2"}
    write_outputs([row], ["a note every leg has", "FLOPs, stale"], meta, tmp_path / "legs", name)


def test_legs_join_with_ratios_across_processes_and_missing_legs_are_left_out(tmp_path):
    leg(tmp_path, "tunekit_compiled", compile_graph_breaks=0, compile_recompiles=0)
    leg(tmp_path, "trainer_compiled", system="Trainer", tokens_per_second=2000.0, compile_graph_breaks=2)
    leg(tmp_path, "tunekit_eager", compile=False, tokens_per_second=1000.0)
    names = ["tunekit_compiled", "trainer_eager", "tunekit_eager", "trainer_compiled"]  # one failed
    json_path, markdown_path = merge_leg_tables(
        [tmp_path / "legs" / f"{name}.json" for name in names], tmp_path, "benchmark"
    )
    payload = json.loads(json_path.read_text())
    rows = payload["rows"]
    assert [(row["system"], row["compile"]) for row in rows] == [
        ("tunekit", True),
        ("tunekit", False),
        ("Trainer", True),
    ]
    assert rows[0]["ratios"] == {"Trainer": pytest.approx(1.5)}
    assert rows[1]["ratios"] == {}  # its Trainer twin (eager) never finished
    assert payload["notes"].count("a note every leg has") == 1 and "FLOPs, stale" not in payload["notes"]
    assert "FLOPs, pretraining bert-base T=512: 600 MFLOP/token: 12 layer(s) at T=512." in payload["notes"]
    assert "torch.compile, tunekit bert-base T=512: 0 graph break(s), 0 recompilation(s)." in payload["notes"]
    assert (
        "torch.compile, Trainer bert-base T=512: 2 graph break(s), None recompilation(s)." in payload["notes"]
    )
    assert "partial" not in payload["meta"]
    assert payload["meta"]["legs, one process each"] == (
        "tunekit_compiled (40 s), tunekit_eager (40 s), trainer_compiled (40 s)"
    )
    assert "1.50×" in markdown_path.read_text()
    assert asdict(Row(**rows[0])) == rows[0]  # the joined rows are rows of the table again


def test_nothing_to_join_writes_nothing(tmp_path):
    assert merge_leg_tables([tmp_path / "missing.json"], tmp_path, "benchmark") is None
    assert not (tmp_path / "benchmark.json").exists()
