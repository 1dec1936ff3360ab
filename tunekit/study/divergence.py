"""Cells whose training loss became non-finite: recorded in diverged.jsonl, not in results.jsonl.

A diverged cell does not end the study (the rest of the grid still runs), is kept out of the
means and named in the report, and is not retried on resume unless its cell_overrides change
(the same flags would diverge again).
"""

import json
from pathlib import Path

from tunekit.study.arguments import StudyArguments


def diverged_record(
    arm: str, budget: str, seed: int, pretrain_budget: int | None, flags: str, error: Exception
) -> dict:
    """`flags`: the cell's cell_overrides flags, as results.jsonl records them."""
    record = {"arm": arm, "budget": budget if budget == "all" else int(budget), "seed": seed}
    if pretrain_budget is not None:
        record["pretrain_budget"] = pretrain_budget
    if flags:
        record["cell_flags"] = flags
    return record | {"error": " ".join(str(error).split())}


def read_diverged(path: Path, args: StudyArguments) -> list[dict]:
    """The diverged cells recorded at `path` that are still this study's (same cell_overrides)."""
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [record for record in records if args.is_current(record)]
