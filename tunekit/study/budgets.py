"""The pretraining-budget axis: how much pretraining it takes before it pays.

With `pretrain_budgets` set, every pretraining of the study runs once per budget (in optimizer
steps, training tokens, or training FLOPs: `tunekit.study.objectives`, for objectives that cost
different amounts per token), and each pretrained arm is fine-tuned from each of them at every label
budget and seed; scratch arms do not depend on pretraining and run once. The gain of a budget is
pretrained minus scratch, paired over seeds, at each label budget.

Each budget is a separate pretraining of exactly that length, not a checkpoint of the longest run:
the learning-rate schedule (warm-up ratio, linear or cosine decay) is laid out over `max_steps`, so
the step-1000 checkpoint of a 4000-step run is still at a high learning rate and is not what a
1000-step run gives. The axis therefore costs the sum of its budgets, and says what a user who
pretrains for that long gets.
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from tunekit.study.arms import REGISTRY
from tunekit.study.stats import difference_ci

UNITS = ("steps", "tokens", "flops")


def budget_dir(root: Path, name: str, budget: int | None, unit: str) -> Path:
    """Where pretraining `name` at `budget` lives: `pretrain/<name>/<unit>_<budget>`, or
    `pretrain/<name>` when the study has no budget axis."""
    base = root / "pretrain" / name
    return base if budget is None else base / f"{unit}_{budget}"


def axis(budgets: list[int]) -> list[int | None]:
    """The pretraining budgets to loop over, ascending; [None] means "as the recipe says"."""
    return sorted(set(budgets)) or [None]


def budgets_of(name: str, budgets: list[int], axis_arms: list[str]) -> list[int | None]:
    """The budgets pretraining `name` runs at: the whole axis when it is the pretraining of an arm
    in `axis_arms` (or `axis_arms` is empty), else [None], its recipe's length."""
    on_axis = not axis_arms or name in {REGISTRY[arm].pretraining.name for arm in axis_arms}
    return axis(budgets) if on_axis else [None]


def steps_for(budget: int, unit: str, tokens_per_step: int) -> int:
    """Optimizer steps of a pretraining of `budget` steps, or of at least `budget` tokens."""
    return budget if unit == "steps" else math.ceil(budget / tokens_per_step)


def with_budget(train_args, budget: int, unit: str, tokens_per_step: int):
    """The stage's TrainArguments shortened (or lengthened) to the budget; the LR schedule follows."""
    return dataclasses.replace(train_args, max_steps=steps_for(budget, unit, tokens_per_step))


def main_rows(rows: list[dict]) -> list[dict]:
    """The rows the ordinary report shows: scratch arms, and pretrained arms at the largest budget
    (what the same study without the axis would have run)."""
    budgets = [row["pretrain_budget"] for row in rows if row.get("pretrain_budget") is not None]
    if not budgets:
        return rows
    return [row for row in rows if row.get("pretrain_budget") in (None, max(budgets))]


@dataclass(frozen=True)
class BudgetGain:
    """Pretrained minus scratch mean test accuracy (fractions) for one pretraining budget."""

    arm: str
    pretrain_budget: int
    pretrain_tokens: int
    label_budget: int | str
    difference: float
    half_width: float
    method: str
    seeds: int
    pretrain_flops: float = 0.0  # what the pretraining spent (its train_flops); 0 for older rows

    @property
    def above_zero(self) -> bool:
        """The whole 95% interval is above zero (unknown, so False, with one seed)."""
        return not math.isnan(self.half_width) and self.difference - self.half_width > 0


def _accuracy(rows: list[dict]) -> dict[int, float]:
    return {row["seed"]: float(row["test_accuracy"]) for row in rows}


def budget_gains(rows: list[dict]) -> list[BudgetGain]:
    """One BudgetGain per pretrained arm, pretraining budget and label budget that has a scratch twin."""
    gains = []
    axis_rows = [row for row in rows if row.get("pretrain_budget") is not None]
    keys = {(row["arm"], row["pretrain_budget"], str(row["budget"])) for row in axis_rows}
    for arm, pretrain_budget, label_budget in sorted(keys, key=lambda k: (k[0], k[2], k[1])):
        mine = [
            row
            for row in axis_rows
            if (row["arm"], row["pretrain_budget"], str(row["budget"]))
            == (arm, pretrain_budget, label_budget)
        ]
        twin = REGISTRY[arm].scratch_twin if arm in REGISTRY else None
        scratch = [row for row in rows if row["arm"] == twin and str(row["budget"]) == label_budget]
        if not scratch:
            continue
        difference, half_width, method = difference_ci(_accuracy(mine), _accuracy(scratch))
        gains.append(
            BudgetGain(
                arm=arm,
                pretrain_budget=pretrain_budget,
                pretrain_tokens=max(int(row.get("pretrain_tokens") or 0) for row in mine),
                pretrain_flops=max(float(row.get("pretrain_flops") or 0) for row in mine),
                label_budget=int(label_budget) if label_budget.isdigit() else label_budget,
                difference=difference,
                half_width=half_width,
                method=method,
                seeds=len(mine),
            )
        )
    return gains


def crossover(gains: list[BudgetGain], unit: str) -> list[str]:
    """Per arm and label budget: the first pretraining budget whose gain interval is above zero."""
    sentences = []
    for arm, label_budget in dict.fromkeys((g.arm, g.label_budget) for g in gains):
        curve = sorted(
            (g for g in gains if (g.arm, g.label_budget) == (arm, label_budget)),
            key=lambda g: g.pretrain_budget,
        )
        first = next((g for g in curve if g.above_zero), None)
        where = f"`{arm}` at {label_budget} labels"
        if first is not None:
            sentence = (
                f"{where}: the gain's 95% interval first lies above zero at {first.pretrain_budget:,} "
                f"{unit} ({first.pretrain_tokens:,} pretraining tokens{_flops_of(first)}): "
                f"{_signed(first)} points."
            )
        elif any(math.isnan(g.half_width) for g in curve):
            sentence = f"{where}: no interval with one seed, so no crossover can be stated."
        else:
            largest = curve[-1]
            sentence = (
                f"{where}: crossover not reached; at the largest budget ({largest.pretrain_tokens:,} "
                f"tokens{_flops_of(largest)}) the gain is {_signed(largest)} points."
            )
        sentences.append(f"{sentence} {zero_crossing(curve, unit)}")
    return sentences


def zero_crossing(curve: list[BudgetGain], unit: str) -> str:
    """Where the mean gain changes sign along one curve (budgets ascending): between which measured
    budgets, and where a straight line in log(budget) through them meets zero; or that it keeps one
    sign over the budgets measured."""
    if len(curve) < 2:
        return "One budget measured: no curve to place the zero crossing on."
    for lower, upper in zip(curve, curve[1:], strict=False):
        if (lower.difference < 0) != (upper.difference < 0):
            fraction = lower.difference / (lower.difference - upper.difference)
            log_x = math.log(lower.pretrain_budget) + fraction * math.log(
                upper.pretrain_budget / lower.pretrain_budget
            )
            direction = "turns positive" if lower.difference < 0 else "turns negative"
            return (
                f"The mean gain {direction} between {lower.pretrain_budget:,} and {upper.pretrain_budget:,} "
                f"{unit} (at ~{math.exp(log_x):.3g} {unit}, interpolated in log {unit})."
            )
    sign = "below" if curve[0].difference < 0 else "above"
    first, last = curve[0].pretrain_budget, curve[-1].pretrain_budget
    return f"The mean gain stays {sign} zero from {first:,} to {last:,} {unit}."


def report_section(gains: list[BudgetGain], unit: str, plot_name: str) -> list[str]:
    """Markdown lines: the table of gains per pretraining budget, the crossover, the plot."""
    if not gains:
        return []
    out = ["## Gain against pretraining budget", ""]
    out += [
        f"Each pretraining budget ({unit}) is a separate pretraining of exactly that length (its "
        "learning-rate schedule spans it), fine-tuned at every label budget and seed. Gain: pretrained "
        "minus scratch mean test accuracy, in points, ± the 95% interval (paired t over seeds when "
        "the seeds match, else Welch t).",
        "",
    ]
    flops = any(g.pretrain_flops for g in gains)  # rows from before FLOPs were recorded have none
    header = ["arm", "labels", f"pretraining {unit}", "pretraining tokens"]
    header += [*(["pretraining FLOPs"] if flops else []), "gain (points)", "seeds"]
    body = [
        [f"`{g.arm}`", str(g.label_budget), f"{g.pretrain_budget:,}", f"{g.pretrain_tokens:,}"]
        + ([f"{g.pretrain_flops:.3g}" if g.pretrain_flops else "—"] if flops else [])
        + [_signed(g), str(g.seeds)]
        for g in gains
    ]
    out += ["| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *body]] + [""]
    out += ["**Crossover** (first budget whose gain interval lies above zero):", ""]
    out += [f"- {sentence}" for sentence in crossover(gains, unit)] + [""]
    x_axis = "FLOPs" if unit == "flops" else "tokens"
    out += [f"![gain against pretraining {x_axis}]({plot_name})", ""]
    return out


def _flops_of(gain: BudgetGain) -> str:
    return f", {gain.pretrain_flops:.3g} FLOPs" if gain.pretrain_flops else ""


def _signed(gain: BudgetGain) -> str:
    half = "n/a" if math.isnan(gain.half_width) else f"{100 * gain.half_width:.1f}"
    return f"{100 * gain.difference:+.1f} ± {half}"
