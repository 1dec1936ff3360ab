import json

from tunekit.benchmark.table import (
    Row,
    add_ratios,
    format_markdown,
    format_ratios,
    format_text,
    write_outputs,
)


def row(system: str, task: str = "pretraining", tokens: float = 1000.0, examples: float = 10.0, **kw) -> Row:
    values = dict(
        task=task,
        model="small",
        system=system,
        precision="no",
        compile=False,
        seq_len=128,
        batch_size=32,
        steps=30,
        seconds=3.0,
        examples_per_second=examples,
        tokens_per_second=tokens,
        mfu=None,
        peak_memory_mib=512.0,
        optimizer="AdamW (fused)",
    )
    return Row(**(values | kw))


def test_ratios_are_taken_against_the_trainer_row_of_the_same_case():
    rows = add_ratios(
        [
            row("tunekit", tokens=1500.0),
            row("Trainer", tokens=1000.0),
            row("tunekit", tokens=300.0, precision="bf16"),
            row("Trainer", tokens=600.0, precision="bf16"),
        ]
    )
    assert rows[0].ratios == {"Trainer": 1.5}
    assert rows[1].ratios == {"Trainer": 1.0}
    assert rows[2].ratios == {"Trainer": 0.5}


def test_fine_tuning_compares_examples_per_second_with_each_trainer_variant():
    rows = add_ratios(
        [
            row("tunekit", task="finetuning", examples=30.0, tokens=1.0),
            row("Trainer (pad to max)", task="finetuning", examples=10.0, tokens=9.0),
            row("Trainer (group_by_length)", task="finetuning", examples=20.0, tokens=9.0),
        ]
    )
    assert rows[0].ratios == {"Trainer (pad to max)": 3.0, "Trainer (group_by_length)": 1.5}
    assert format_ratios(rows[0].ratios) == "3.00× pad-max · 1.50× grouped"


def test_cpu_time_ratios_use_process_cpu_seconds():
    rows = add_ratios(
        [
            row("tunekit", tokens=1000.0, seconds=4.0, cpu_seconds=2.0),
            row("Trainer", tokens=1000.0, seconds=4.0, cpu_seconds=4.0),
        ]
    )
    assert rows[0].cpu_time_throughput == 2000.0 and rows[0].cpu_ratios == {"Trainer": 2.0}
    assert rows[0].ratios == {"Trainer": 1.0}
    assert "2,000 tok/s" in format_text(rows).splitlines()[2]


def test_a_case_without_a_trainer_row_has_no_ratio():
    (only,) = add_ratios([row("tunekit")])
    assert only.ratios == {} and format_ratios(only.ratios) == "—"
    assert only.cpu_time_throughput is None and only.cpu_ratios == {}


def test_text_table_is_aligned_and_shows_units_and_missing_mfu():
    rows = add_ratios([row("tunekit", tokens=4395.4), row("Trainer", tokens=4745.0, mfu=0.4567)])
    lines = format_text(rows).splitlines()
    assert len(lines) == 4 and set(lines[1]) <= {"-", " "}
    assert lines[0].index("throughput") == lines[2].index("4,395 tok/s") == lines[3].index("4,745 tok/s")
    assert "—" in lines[2] and "45.7 %" in lines[3] and "0.93×" in lines[2]
    assert "fp32" in lines[2] and "small T=128 B=32" in lines[2]


def test_markdown_and_json_files_hold_the_rows_notes_and_meta(tmp_path):
    rows = add_ratios([row("tunekit", tokens=2000.0), row("Trainer")])
    json_path, md_path = write_outputs(rows, ["a note"], {"device": "cpu"}, tmp_path / "out", "bench")
    payload = json.loads(json_path.read_text())
    assert payload["meta"] == {"device": "cpu"} and payload["notes"] == ["a note"]
    assert payload["rows"][0]["ratios"] == {"Trainer": 2.0}
    markdown = md_path.read_text()
    assert markdown == format_markdown(rows, ["a note"], {"device": "cpu"})
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 4 and all(line.count("|") == 12 for line in table)
    assert "2.00×" in table[2] and "- a note" in markdown
