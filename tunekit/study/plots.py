"""The study's learning curve: test accuracy vs labelled examples, one line per arm, with 95% CIs."""

import dataclasses
from pathlib import Path

import numpy as np

from tunekit.errors import TunekitError
from tunekit.study.arms import arm_named, report_order
from tunekit.study.report import _budget_key, _budget_label, summarize


def plot_learning_curve(
    path: str | Path, rows: list[dict], title: str, *, chance: float | None = None
) -> None:
    """Test accuracy (%) vs labelled examples (log axis), one line per arm, 95% CI error bars.

    `chance` (a fraction, e.g. 0.5 for balanced binary labels) draws a chance line.
    """
    # Figure without pyplot needs no GUI backend (headless); matplotlib is the optional `study` extra.
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    if not (summaries := summarize(rows)):
        raise TunekitError(f"no results to plot in {path}")
    numeric = [s.budget for s in summaries if isinstance(s.budget, int)]
    # "all" sits at the train set size; without it, a bit right of the largest budget.
    fallback = 2.5 * max(numeric, default=10)
    arms = sorted({s.arm for s in summaries}, key=report_order)
    figure = Figure(figsize=(8.5, 5), dpi=150)
    ax = figure.add_subplot()
    for i, arm in enumerate(arms):
        cells = [s for s in summaries if s.arm == arm]
        shift = 10 ** ((i - (len(arms) - 1) / 2) * 0.012)  # a small offset in log space keeps bars apart
        x = [(s.train_examples or fallback) * shift for s in cells]
        means, halves = zip(*(s.accuracy_ci for s in cells), strict=True)
        style = arm_named(arm).style  # the arm's own colour, line and marker (tunekit.study.arms)
        style = {"capsize": 3, "linewidth": 1.6, "markersize": 5, **dataclasses.asdict(style)}
        # n = 1 has no interval (nan): drawn without a bar rather than dropped
        ax.errorbar(
            x, 100 * np.array(means), yerr=100 * np.nan_to_num(halves), label=arm_named(arm).label, **style
        )
    if chance is not None:  # labelled on the line: a legend entry would sit above the arms
        ax.axhline(100 * chance, color="0.5", linestyle=":", linewidth=1)
        ax.text(0.99, 100 * chance, "chance", transform=ax.get_yaxis_transform(), ha="right", va="bottom")
    ticks = {
        s.budget: (s.train_examples or fallback, _budget_label(s.budget, s.train_examples, "\n"))
        for s in summaries
    }
    ax.set_xscale("log")
    ax.set_xticks(*zip(*(ticks[b] for b in sorted(ticks, key=_budget_key)), strict=True))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel="labelled training examples", ylabel="test accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(title="mean ± 95% CI", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=150, bbox_inches="tight")


def _short_count(count: float) -> str:
    """1.5M, 300k, 512: a tick label that stays short."""
    if count >= 1e6:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.0f}k" if count >= 1e3 else f"{count:.0f}"


def plot_pretraining_gain(path: str | Path, gains: list, title: str, x_axis: str = "tokens") -> None:
    """Gain of pretraining (points, pretrained minus scratch, 95% CI) against pretraining tokens, or
    with `x_axis="flops"` the training FLOPs each pretraining spent (log x), one line per pretrained
    arm and label budget; `gains` are `budgets.BudgetGain`s."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    if not gains:
        raise TunekitError(f"no pretraining-budget gains to plot in {path}")
    figure = Figure(figsize=(8.5, 5), dpi=150)
    ax = figure.add_subplot()

    def x(gain) -> float:
        return gain.pretrain_flops if x_axis == "flops" else gain.pretrain_tokens

    if x_axis == "flops" and not all(g.pretrain_flops for g in gains):
        raise TunekitError(f"no pretraining FLOPs recorded for every gain to plot in {path}")
    curves = dict.fromkeys((g.arm, g.label_budget) for g in gains)
    for i, (arm, labels) in enumerate(curves):
        curve = sorted((g for g in gains if (g.arm, g.label_budget) == (arm, labels)), key=x)
        style = {**dataclasses.asdict(arm_named(arm).style), "linestyle": ("-", "--", ":", "-.")[i % 4]}
        ax.errorbar(
            [x(g) for g in curve],
            [100 * g.difference for g in curve],
            yerr=[100 * np.nan_to_num(g.half_width) for g in curve],
            label=f"{arm_named(arm).label}, {labels} labels",
            capsize=3,
            linewidth=1.6,
            markersize=5,
            **style,
        )
    ax.axhline(0, color="0.4", linewidth=1)
    ax.set_xscale("log")
    # Label the budgets themselves: log-axis minor labels (3x10^6, 4x10^6, ...) overprint each other.
    ticks = sorted({x(g) for g in gains})
    if x_axis == "flops":  # FLOPs budgets differ between objectives by a few percent: small labels
        ax.set_xticks(ticks, [f"{t:.2g}" for t in ticks], fontsize=7, rotation=30)
    else:
        ax.set_xticks(ticks, [_short_count(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    xlabel = "pretraining FLOPs (log scale)" if x_axis == "flops" else "pretraining tokens (log scale)"
    ax.set(xlabel=xlabel, ylabel="gain over scratch (accuracy points)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(title="mean ± 95% CI", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=150, bbox_inches="tight")
