"""The benchmark table: rows, ratios to the Trainer, and its text, Markdown and JSON forms."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunekit.training.flops import FORMULA

DASH = "—"
# Short names for the Trainer rows a ratio refers to, when a case has more than one.
REFERENCE_LABELS = {"Trainer (pad to max)": "pad-max", "Trainer (group_by_length)": "grouped"}


@dataclass
class Row:
    task: str
    model: str
    system: str
    precision: str
    compile: bool
    seq_len: int
    batch_size: int
    steps: int
    seconds: float
    examples_per_second: float
    tokens_per_second: float
    mfu: float | None
    peak_memory_mib: float
    optimizer: str
    ratios: dict[str, float] = field(default_factory=dict)  # Trainer system -> throughput ratio
    cpu_seconds: float | None = None  # process CPU time of the window (CPU runs only)
    cpu_ratios: dict[str, float] = field(default_factory=dict)  # the same ratios over CPU time
    flops_per_token: float | None = None  # the model FLOPs behind `mfu` (tunekit.training.flops)
    attention_counted: str = ""  # how the FLOPs counted each layer's attention
    compile_graph_breaks: int | None = None  # compiled legs (tunekit.training.compile_stats)
    compile_recompiles: int | None = None

    @property
    def case_key(self) -> tuple:
        return (self.task, self.model, self.precision, self.compile, self.seq_len, self.batch_size)

    @property
    def throughput(self) -> float:
        """The compared figure: tokens/s for pretraining, examples/s for fine-tuning."""
        return self.tokens_per_second if self.task == "pretraining" else self.examples_per_second

    @property
    def cpu_time_throughput(self) -> float | None:
        """The compared figure per second of process CPU time."""
        if not self.cpu_seconds:
            return None
        return self.throughput * self.seconds / self.cpu_seconds


def is_reference(row: Row) -> bool:
    return row.system.startswith("Trainer")


def add_ratios(rows: list[Row]) -> list[Row]:
    """Each row's throughput over that of every Trainer row of the same case."""
    for row in rows:
        references = [r for r in rows if is_reference(r) and r.case_key == row.case_key]
        row.ratios = {r.system: row.throughput / r.throughput for r in references if r.throughput > 0}
        if row.cpu_time_throughput is not None:
            row.cpu_ratios = {
                r.system: row.cpu_time_throughput / r.cpu_time_throughput
                for r in references
                if r.cpu_time_throughput
            }
    return rows


def format_throughput(task: str, value: float | None) -> str:
    if value is None:
        return DASH
    if task == "pretraining":
        return f"{value:,.0f} tok/s"
    return f"{value:,.2f} ex/s" if value < 10 else f"{value:,.1f} ex/s"


def format_ratios(ratios: dict[str, float]) -> str:
    if not ratios:
        return DASH
    if len(ratios) == 1:
        return f"{next(iter(ratios.values())):.2f}×"
    return " · ".join(f"{value:.2f}× {REFERENCE_LABELS.get(name, name)}" for name, value in ratios.items())


def _precision(row: Row) -> str:
    return "fp32" if row.precision == "no" else row.precision


COLUMNS = (
    "task",
    "model",
    "system",
    "precision",
    "compile",
    "throughput",
    "MFU",
    "peak memory",
    "vs Trainer",
    "per CPU-second",
    "vs Trainer (CPU time)",
)


def cells(row: Row) -> list[str]:
    return [
        row.task,
        f"{row.model} T={row.seq_len} B={row.batch_size}",
        row.system,
        _precision(row),
        "yes" if row.compile else "no",
        format_throughput(row.task, row.throughput),
        DASH if row.mfu is None else f"{100 * row.mfu:.1f} %",
        f"{row.peak_memory_mib:,.0f} MiB",
        format_ratios(row.ratios),
        format_throughput(row.task, row.cpu_time_throughput),
        format_ratios(row.cpu_ratios),
    ]


def flops_notes(rows: list[Row]) -> list[str]:
    """The FLOPs formula the MFU column used, and what it came to for each model and length."""
    cases: dict[tuple[str, int, str], Row] = {}
    for row in rows:
        if row.flops_per_token is not None:
            cases.setdefault((row.model, row.seq_len, row.task), row)
    if not cases:
        return []
    lines = [f"{FORMULA}."]
    for (model, seq_len, task), row in cases.items():
        counted = f": {row.attention_counted}" if row.attention_counted else ""
        lines.append(
            f"FLOPs, {task} {model} T={seq_len}: {row.flops_per_token / 1e6:.4g} MFLOP/token{counted}."
        )
    return lines


def compile_notes(rows: list[Row]) -> list[str]:
    """What torch.compile did in each compiled leg: a break or a recompilation costs the step."""
    return [
        f"torch.compile, {row.system} {row.model} T={row.seq_len}: {row.compile_graph_breaks} graph "
        f"break(s), {row.compile_recompiles} recompilation(s)."
        for row in rows
        if row.compile and row.compile_graph_breaks is not None
    ]


def format_text(rows: list[Row]) -> str:
    """An aligned plain-text table for the terminal."""
    grid = [list(COLUMNS), *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in grid
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def format_markdown(rows: list[Row], notes: list[str], meta: dict[str, Any]) -> str:
    lines = ["# tunekit benchmark", ""]
    lines += [f"- **{key}**: {value}" for key, value in meta.items()]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_outputs(
    rows: list[Row], notes: list[str], meta: dict[str, Any], output_dir: Path, stem: str
) -> tuple[Path, Path]:
    """`<stem>.json` and `<stem>.md` under output_dir."""
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = output_dir / f"{stem}.json", output_dir / f"{stem}.md"
    payload = {"meta": meta, "notes": notes, "rows": [asdict(row) for row in rows]}
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    markdown_path.write_text(format_markdown(rows, notes, meta))
    return json_path, markdown_path
