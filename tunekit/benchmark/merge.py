"""One benchmark table from legs measured in separate processes.

A device run measures each leg (one system, one case) in a process of its own, so that a leg that
fails or runs out of time costs only itself; each writes its own `<stem>.json`. Here their rows are
joined and the ratios to the Trainer recomputed across them, as if one process had run them all.
"""

import json
from pathlib import Path

from tunekit.benchmark.table import Row, add_ratios, compile_notes, flops_notes, write_outputs

# Notes that differ from leg to leg only by the figures they quote are rebuilt, not repeated.
REBUILT_NOTE_PREFIXES = ("FLOPs/token =", "FLOPs, ", "torch.compile, ")


def merge_leg_tables(tables: list[Path], output_dir: Path, stem: str) -> tuple[Path, Path] | None:
    """`<stem>.json` and `.md` joining the rows of `tables` (in that order); None when none exists."""
    rows: list[Row] = []
    notes: list[str] = []
    legs, commands = [], []
    meta: dict[str, str] = {}
    for path in tables:
        if not path.is_file():
            continue
        payload = json.loads(path.read_text())
        rows += [Row(**{**row, "ratios": {}, "cpu_ratios": {}}) for row in payload.get("rows", [])]
        for note in payload.get("notes", []):
            if note not in notes and not note.startswith(REBUILT_NOTE_PREFIXES):
                notes.append(note)
        leg_meta = payload.get("meta", {})
        meta = meta or dict(leg_meta)
        legs.append(f"{path.stem} ({leg_meta.get('wall time', '?')})")
        commands.append(leg_meta.get("command", "?"))
    if not legs:
        return None

    add_ratios(rows)
    meta.pop("partial", None)
    meta["legs, one process each"] = ", ".join(legs)
    meta["command"] = " ; ".join(commands)
    return write_outputs(rows, notes + flops_notes(rows) + compile_notes(rows), meta, output_dir, stem)
