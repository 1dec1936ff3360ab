"""The sequence-length benchmark's outputs: a Markdown table with the notes and command, the raw
measurements as JSON, and a log-log plot of time per token against T."""

import json
from pathlib import Path


def format_table(measured: dict) -> str:
    """Markdown: one row per T, both models' time per token, their ratio and sequential depths."""
    names = list(measured["models"])
    by_key = {(row["model"], row["seq_len"]): row for row in measured["rows"]}
    lengths = sorted({row["seq_len"] for row in measured["rows"]})
    header = ["T", "batch (sequences)"] + [f"{name} µs/token" for name in names]
    header += ["LSTM / transformer"] + [f"{name} sequential depth" for name in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for length in lengths:
        cells = [by_key[name, length] for name in names]
        ratio = cells[-1]["microseconds_per_token"] / cells[0]["microseconds_per_token"]
        values = [str(length), str(cells[0]["batch_size"])]
        values += [f"{cell['microseconds_per_token']:.2f}" for cell in cells] + [f"{ratio:.2f}"]
        values += [str(cell["sequential_depth"]) for cell in cells]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def _describe_models(measured: dict) -> str:
    return "; ".join(
        f"{name}: {size['layers']} x {size['hidden_size']}, {size['non_embedding_parameters']:,} "
        f"non-embedding ({size['parameters']:,} total) parameters"
        for name, size in measured["models"].items()
    )


def plot(measured: dict, path: str | Path) -> None:
    """Log-log: µs per training token against T, one line per model."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    args = measured["arguments"]
    figure = Figure(figsize=(7, 4.5), dpi=150)
    ax = figure.add_subplot()
    for name, marker in zip(measured["models"], ("o", "s"), strict=True):
        rows = sorted((r for r in measured["rows"] if r["model"] == name), key=lambda r: r["seq_len"])
        ax.plot(
            [r["seq_len"] for r in rows],
            [r["microseconds_per_token"] for r in rows],
            marker=marker,
            label=name,
        )
    ax.set_xscale("log", base=2)
    lengths = sorted({r["seq_len"] for r in measured["rows"]})
    ax.set_xticks(lengths, [str(length) for length in lengths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yscale("log")
    ax.set(
        xlabel="sequence length T (tokens, log scale)",
        ylabel="wall time per training token (µs, log scale)",
        title=f"Forward+backward, {args['batch_tokens']:,} tokens/batch, {args['precision']}\n"
        f"{measured['device']}",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="equal non-embedding parameters", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


def write_outputs(measured: dict, output_dir: str | Path, command: str) -> dict[str, Path]:
    """sequence_length.json, sequence_length.md (table, models, notes, command) and sequence_length.png."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    paths = {kind: output / f"sequence_length.{kind}" for kind in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(measured | {"command": command}, indent=2) + "\n")
    args = measured["arguments"]
    text = [
        "# Cost versus sequence length: LSTM vs transformer",
        "",
        f"**Device:** {measured['device']}, torch {measured['torch']}, {args['precision']}. "
        f"**Batch:** {args['batch_tokens']:,} tokens at every T. **Timing:** median of {args['repeats']} "
        f"forward+backward passes per model (optimizer step excluded), the two models alternating, "
        f"after {args['warmup']} untimed warm-up pass(es) each.",
        "",
        f"**Models:** {_describe_models(measured)}.",
        "",
        format_table(measured),
        f"![time per token against T]({paths['png'].name})",
        "",
        f"**What to expect, and why:** {measured['notes']}",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    paths["md"].write_text("\n".join(text))
    plot(measured, paths["png"])
    return paths
