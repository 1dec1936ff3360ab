"""The study report: per-cell results -> means with confidence intervals, tables, a learning curve.

A study runs a grid of cells (arm x label budget x seed); each finished cell appends one JSON line
to `results.jsonl`. Accuracies are fractions in the rows and percentages in everything written for
people. Intervals are Student-t: with 3-5 seeds a normal interval is far too narrow
(t_{0.975,2} = 4.30, not 1.96).
"""

import json
import logging
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tunekit.errors import TunekitError
from tunekit.study.arms import REGISTRY, report_order
from tunekit.study.stats import difference_ci, mean_ci

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("arm", "budget", "seed", "test_accuracy", "test_f1")
Budget = int | str  # labelled examples, or "all" for the full training set


def load_results(path: str | Path) -> list[dict]:
    """The rows of a results.jsonl. A broken last line is a cell killed mid-write: skipped, warned."""
    lines = [(i, line) for i, line in enumerate(Path(path).read_text().splitlines(), 1) if line.strip()]
    rows = []
    for i, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            if i == lines[-1][0]:
                logger.warning("%s:%d: skipping a truncated last line (a killed run?)", path, i)
                break
            raise TunekitError(f"{path}:{i}: not a JSON line ({error})") from error
        if missing := [key for key in REQUIRED_KEYS if key not in row]:
            raise TunekitError(f"{path}:{i}: missing key(s) {', '.join(missing)}")
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Summary:
    """One (arm, budget) cell over its seeds. Per-seed values are kept for paired comparisons."""

    arm: str
    budget: Budget
    train_examples: int | None  # labelled examples used: the budget, or the train set size for "all"
    accuracy: dict[int, float]  # seed -> test accuracy (fraction)
    f1: dict[int, float]  # seed -> test macro-F1 (fraction)
    steps: float  # means over seeds (nan when the rows lack the key)
    wall_time: float
    train_flops: float
    total_wall_time: float  # sums over seeds: what the cell cost
    total_train_flops: float
    num_parameters: int | None

    @property
    def n(self) -> int:
        return len(self.accuracy)

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        return mean_ci(list(self.accuracy.values()))

    @property
    def f1_ci(self) -> tuple[float, float]:
        return mean_ci(list(self.f1.values()))


def _budget_key(budget: Budget) -> tuple[int, int]:
    return (1, 0) if isinstance(budget, str) else (0, budget)


def _values(rows: list[dict], key: str) -> list[float]:
    return [float(row[key]) for row in rows if row.get(key) is not None]


def summarize(rows: list[dict]) -> list[Summary]:
    """Group rows by (arm, budget), ordered by budget ("all" last), then arm (the registry's order)."""
    cells: dict[tuple[str, Budget], dict[int, dict]] = {}
    for row in rows:
        budget = int(row["budget"]) if str(row["budget"]).isdigit() else row["budget"]
        cell = cells.setdefault((row["arm"], budget), {})
        if row["seed"] in cell:
            logger.warning(
                "%s budget %s seed %s ran twice: keeping the later row", row["arm"], budget, row["seed"]
            )
        cell[row["seed"]] = row
    summaries = []
    for arm, budget in sorted(cells, key=lambda cell: (_budget_key(cell[1]), report_order(cell[0]))):
        by_seed = cells[arm, budget]
        group = [by_seed[seed] for seed in sorted(by_seed)]
        sizes = [int(v) for v in _values(group, "train_examples")]
        steps, wall, flops = (_values(group, key) for key in ("steps", "wall_time", "train_flops"))
        params = [int(v) for v in _values(group, "num_parameters")]
        summaries.append(
            Summary(
                arm=arm,
                budget=budget,
                train_examples=budget if isinstance(budget, int) else max(sizes, default=None),
                accuracy={seed: float(by_seed[seed]["test_accuracy"]) for seed in sorted(by_seed)},
                f1={seed: float(by_seed[seed]["test_f1"]) for seed in sorted(by_seed)},
                steps=float(np.mean(steps)) if steps else math.nan,
                wall_time=float(np.mean(wall)) if wall else math.nan,
                train_flops=float(np.mean(flops)) if flops else math.nan,
                total_wall_time=float(sum(wall)),
                total_train_flops=float(sum(flops)),
                num_parameters=max(params, default=None),
            )
        )
    return summaries


@dataclass(frozen=True)
class Comparison:
    """Mean test accuracy of `arm` minus that of `baseline` at one budget (fractions)."""

    arm: str
    baseline: str
    budget: Budget
    arm_mean: float
    baseline_mean: float
    difference: float
    half_width: float
    method: str  # "paired t" or "Welch t", see difference_ci


def compare_with(summaries: list[Summary], baseline_of: Callable[[str], str | None]) -> list[Comparison]:
    """Each arm minus the arm `baseline_of` names for it (None: no baseline), per budget, paired by
    seed where both ran the same seeds (`difference_ci`); in report order."""
    by_cell = {(s.arm, s.budget): s for s in summaries}
    found = []
    for s in summaries:
        other = by_cell.get((baseline_of(s.arm), s.budget))
        if other is not None and other is not s:  # an arm that is its own baseline has none
            difference, half_width, method = difference_ci(s.accuracy, other.accuracy)
            mean_a, mean_b = (float(np.mean(list(x.accuracy.values()))) for x in (s, other))
            found.append(
                Comparison(s.arm, other.arm, s.budget, mean_a, mean_b, difference, half_width, method)
            )
    return sorted(found, key=lambda c: (report_order(c.arm), _budget_key(c.budget)))


def pretraining_gain(summaries: list[Summary]) -> list[Comparison]:
    """A pretrained arm minus its scratch twin (`Arm.scratch_twin`), per budget."""
    return compare_with(summaries, lambda arm: arm_twin(arm, "scratch_twin"))


def bf16_effect(summaries: list[Summary]) -> list[Comparison]:
    """A bf16-recurrence arm minus its fp32 twin (`Arm.fp32_twin`), per budget."""
    return compare_with(summaries, lambda arm: arm_twin(arm, "fp32_twin"))


def arm_twin(name: str, twin: str) -> str | None:
    """The arm an arm is compared with (`Arm.scratch_twin` or `Arm.fp32_twin`); None for an arm the
    registry does not know."""
    return getattr(REGISTRY[name], twin) if name in REGISTRY else None


def _pct(mean: float, half_width: float, signed: bool = False) -> str:
    value = f"{100 * mean:+.1f}" if signed else f"{100 * mean:.1f}"
    return f"{value} ± {'n/a' if math.isnan(half_width) else f'{100 * half_width:.1f}'}"


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def _flops(flops: float | None) -> str:
    if flops is None or math.isnan(flops):
        return "—"
    return f"{flops:.2e}" if flops else "0"


def _budget_label(budget: Budget, train_examples: int | None, sep: str = " ") -> str:
    if isinstance(budget, int):
        return f"{budget:,}"
    return f"{budget}{sep}({train_examples:,})" if train_examples else budget


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    rows = [header, ["---"] * len(header), *body]
    return ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _comparison_rows(comparisons: list[Comparison], label: Callable[[Comparison], str]) -> list[list[str]]:
    return [
        [label(c), _budget_label(c.budget, None), f"{100 * c.arm_mean:.1f}", f"{100 * c.baseline_mean:.1f}"]
        + [_pct(c.difference, c.half_width, signed=True), c.method]
        for c in comparisons
    ]


def write_report(
    path: str | Path,
    rows: list[dict],
    *,
    pretraining: dict,
    recipe_text: str,
    commands: list[str],
    machine: str,
    notes: list[str],
    title: str = "tunekit study: what does pretraining buy?",
    sections: list[str] = (),
) -> None:
    """A markdown report of a study: accuracy per budget, gains, compute, bf16, `sections` (markdown
    lines, e.g. the pretraining-budget axis), notes, commands, recipe."""
    if not (summaries := summarize(rows)):
        raise TunekitError(f"no results to report in {path}")
    out = [f"# {title}", "", f"**Machine:** {machine}", ""]
    out += ["## Test accuracy per label budget", ""]
    out += ["Accuracy and macro-F1 in %: mean ± half-width of the 95% Student-t interval over seeds.", ""]
    for budget in sorted({s.budget for s in summaries}, key=_budget_key):
        cells = [s for s in summaries if s.budget == budget]
        out += [f"### {_budget_label(budget, cells[0].train_examples)} labelled examples", ""]
        header = ["arm", "seeds", "accuracy (%)", "macro-F1 (%)", "fine-tune steps", "fine-tune time"]
        header += ["params"]
        body = [
            [f"`{s.arm}`", str(s.n), _pct(*s.accuracy_ci), _pct(*s.f1_ci)]
            + ["—" if math.isnan(s.steps) else f"{s.steps:,.0f}", _duration(s.wall_time)]
            + [f"{s.num_parameters:,}" if s.num_parameters else "—"]
            for s in cells
        ]
        out += _table(header, body)
    if gains := pretraining_gain(summaries):
        out += ["## Gain of pretraining", ""]
        out += [
            "Pretrained minus scratch mean test accuracy, in percentage points, ± the 95% interval: "
            "*paired t* over per-seed differences when both arms ran the same seeds (a seed fixes "
            "the label subset), otherwise *Welch t*.",
            "",
        ]
        header = ["architecture", "budget", "pretrained (%)", "scratch (%)", "gain (points)", "interval"]
        out += _table(header, _comparison_rows(gains, lambda c: REGISTRY[c.arm].pretraining.name))
    out += ["## Compute", ""]
    header = ["arm", "pretraining time", "pretraining FLOPs", "pretraining tokens"]
    header += ["fine-tuning time (all cells)", "fine-tuning FLOPs (all cells)", "params"]
    body = []
    for arm in sorted({s.arm for s in summaries}, key=report_order):
        mine, pre = [s for s in summaries if s.arm == arm], pretraining.get(arm) or {}
        params = max((s.num_parameters or 0 for s in mine), default=0)
        tokens = int(pre.get("tokens_seen") or 0)
        body.append(
            [f"`{arm}`", _duration(pre.get("wall_time")), _flops(pre.get("train_flops"))]
            + [f"{tokens:,}" if tokens else "—", _duration(sum(s.total_wall_time for s in mine))]
            + [_flops(sum(s.total_train_flops for s in mine)), f"{params:,}" if params else "—"]
        )
    out += _table(header, body)
    if bf16 := bf16_effect(summaries):
        out += ["## bf16 recurrence vs fp32", ""]
        out += ["bf16 minus fp32 mean test accuracy, in percentage points, ± the 95% interval.", ""]
        header = ["arm", "budget", "bf16 (%)", "fp32 (%)", "bf16 − fp32 (points)", "interval"]
        out += _table(header, _comparison_rows(bf16, lambda c: f"`{c.baseline}`"))
    out += list(sections)
    if notes:
        out += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    out += ["## Commands", "", "```bash", *commands, "```", ""]
    out += ["## Recipe", "", "```yaml", recipe_text.rstrip("\n"), "```", ""]
    Path(path).write_text("\n".join(out))


def format_summary_table(summaries: list[Summary]) -> str:
    """A plain-text table for the console: arm, budget, seeds, accuracy and macro-F1 (%, ± 95% CI),
    parameters and mean wall time of a fine-tuning cell."""
    width = max([24, *(len(s.arm) for s in summaries)])  # e.g. transformer_pretrained_lora
    header = (
        f"{'arm':<{width}} {'budget':>8} {'n':>3} {'accuracy (%)':>14} {'macro-F1 (%)':>14} "
        f"{'params':>10} {'time/cell':>10}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        budget = s.budget if isinstance(s.budget, str) else f"{s.budget:,}"
        params = f"{s.num_parameters:,}" if s.num_parameters else "—"
        lines.append(
            f"{s.arm:<{width}} {budget:>8} {s.n:>3} {_pct(*s.accuracy_ci):>14} {_pct(*s.f1_ci):>14} "
            f"{params:>10} {_duration(s.wall_time):>10}"
        )
    return "\n".join(lines)


def machine_description() -> str:
    """Host, CPU threads and GPU, for the report's "Machine" line."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return f"{platform.node()} ({platform.machine()}, {torch.get_num_threads()} CPU threads, {device})"
