"""The tables of the precision report (tunekit.study.lstm_precision), from what the studies left on
disk: the accuracy difference bf16 - fp32 of LSTM and transformer arms in one table, the
language models' loss per precision, speed per precision, rounded vs real bf16, and the host.

The LSTM's two precisions live in one study (its `*_bf16` arms); the transformer's in two runs of
one study, in fp32 and under bf16 autocast, whose cells `transformer_rows` pairs by seed.
"""

import json
import math
import statistics
from pathlib import Path

import torch

from tunekit.study.report import Comparison, compare_with, load_results, summarize

# The precision study names a bf16 cell after its fp32 twin plus this suffix, for the LSTM arms of
# the registry (`lstm_pretrained_bf16`) and for the transformer studies run under bf16 autocast,
# whose arms the registry does not hold (they are whole studies run with `--mixed_precision bf16`).
BF16_SUFFIX = "_bf16"


def architecture_of(arm: str) -> str:
    """`transformer` or `lstm`: the first word of every arm name this study runs."""
    return arm.split("_", 1)[0]


def bf16_effect(summaries: list) -> list[Comparison]:
    """Each `<arm>_bf16` minus `<arm>`, per budget, paired by seed."""
    return compare_with(
        summaries, lambda arm: arm.removesuffix(BF16_SUFFIX) if arm.endswith(BF16_SUFFIX) else None
    )


MODELS = {"lstm": "LSTM", "transformer": "transformer"}
LM_NAMES = {"lstm": "LSTM LM (next token)", "transformer": "transformer MLM (masked tokens)"}
# Distances from the predicted token at which the report tabulates gradient norms.
GRADIENT_DISTANCES = (1, 7, 31, 63, 127, 255)
# CPU flags that say what a bf16 autocast pass runs on.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "avx512f", "avx2")


def read_metrics(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


# ---- what the studies left on disk, per model (LSTM or transformer) and precision (fp32 or bf16)


def pretraining_dirs(
    studies: dict[int, Path], transformer_studies: dict[int, tuple[Path, Path]]
) -> dict[int, dict[str, dict[str, Path]]]:
    """{T: {model: {precision: pretraining folder}}}: the LSTM's two LMs live in one study, the
    transformer's two MLMs in its fp32 and its bf16 study."""
    found: dict[int, dict[str, dict[str, Path]]] = {}
    for length, study_dir in studies.items():
        found.setdefault(length, {})["lstm"] = {
            "fp32": study_dir / "pretrain" / "lstm",
            "bf16": study_dir / "pretrain" / "lstm_bf16",
        }
    for length, (fp32_dir, bf16_dir) in transformer_studies.items():
        found.setdefault(length, {})["transformer"] = {
            "fp32": fp32_dir / "pretrain" / "transformer",
            "bf16": bf16_dir / "pretrain" / "transformer",
        }
    return found


def transformer_rows(fp32_dir: Path, bf16_dir: Path) -> list[dict]:
    """Both transformer studies' cells as one study's: the bf16 study's arms take the `_bf16`
    suffix, so `bf16_effect` pairs each with its fp32 twin by seed, as it pairs the LSTM arms."""
    rows = []
    for study_dir, suffix in ((fp32_dir, ""), (bf16_dir, BF16_SUFFIX)):
        if (study_dir / "results.jsonl").is_file():
            rows += [row | {"arm": row["arm"] + suffix} for row in load_results(study_dir / "results.jsonl")]
    return rows


def study_rows(
    studies: dict[int, Path], transformer_studies: dict[int, tuple[Path, Path]]
) -> dict[int, list[dict]]:
    """Every finished cell per T, LSTM and transformer together."""
    rows: dict[int, list[dict]] = {}
    for length, study_dir in studies.items():
        if (study_dir / "results.jsonl").is_file():
            rows.setdefault(length, []).extend(load_results(study_dir / "results.jsonl"))
    for length, (fp32_dir, bf16_dir) in transformer_studies.items():
        rows.setdefault(length, []).extend(transformer_rows(fp32_dir, bf16_dir))
    return rows


def bf16_runs(architecture: str, rows: list[dict]) -> str:
    """What the bf16 arms of `architecture` changed against their fp32 twins, from the cells' own
    record of their mixed precision: an LSTM's recurrence alone (under autocast in both, or fp32
    rounded to bf16 without autocast), or a transformer's whole forward and backward pass."""
    precision = {row.get("mixed_precision") for row in rows if row["arm"].endswith(BF16_SUFFIX)}
    if architecture == "lstm":
        if precision == {"bf16"}:
            return "recurrence in bf16 (both arms under bf16 autocast)"
        return "recurrence rounded to bf16 per op (no autocast)" if precision == {"no"} else "recurrence"
    return "whole model under bf16 autocast (fp32 arm: no autocast)"


def accuracy_comparisons(rows_by_length: dict[int, list[dict]]) -> list[tuple[int, Comparison, str]]:
    """(T, bf16 − fp32 of one arm and budget, what bf16 changed), LSTM and transformer arms."""
    found = []
    for length, rows in sorted(rows_by_length.items()):
        for comparison in bf16_effect(summarize(rows)):
            architecture = architecture_of(comparison.baseline)
            mine = [row for row in rows if architecture_of(row["arm"]) == architecture]
            found.append((length, comparison, bf16_runs(architecture, mine)))
    return found


def lm_losses(pretrainings: dict[int, dict[str, dict[str, Path]]]) -> dict[str, dict]:
    """{T: {model: {precision: {step: validation loss}}}} from each pretraining's metrics.jsonl,
    keys as strings (the shape of lm_loss.json)."""
    losses: dict[str, dict] = {}
    for length, models in sorted(pretrainings.items()):
        for model, by_precision in models.items():
            for precision, folder in by_precision.items():
                curve = {
                    str(r["step"]): r["eval_loss"]
                    for r in read_metrics(folder / "metrics.jsonl")
                    if "eval_loss" in r
                }
                if curve:
                    losses.setdefault(str(length), {}).setdefault(model, {})[precision] = curve
    return losses


def last_common_step(fp32: dict[str, float], bf16: dict[str, float]) -> str | None:
    """The last step at which both precisions were validated (a pretraining may still be running)."""
    return max(set(fp32) & set(bf16), key=int, default=None)


def lm_loss_lines(losses: dict[str, dict]) -> list[str]:
    """The validation loss of each pretraining at each checked step, fp32 and bf16, and the
    difference at the last step."""
    out = ["| T | language model | steps | fp32 | bf16 | bf16 − fp32 at the last common step (nats) |"]
    out += ["|---|---|---|---|---|---|"]
    for length, models in sorted(losses.items(), key=lambda item: int(item[0])):
        for model, by_precision in sorted(models.items(), key=lambda item: item[0] != "lstm"):
            fp32, bf16 = by_precision.get("fp32", {}), by_precision.get("bf16", {})
            steps = sorted(set(fp32) | set(bf16), key=int)
            cells = [
                " / ".join(f"{curve[s]:.3f}" if s in curve else "—" for s in steps) for curve in (fp32, bf16)
            ]
            step = last_common_step(fp32, bf16)
            difference = "—" if step is None else f"{bf16[step] - fp32[step]:+.3f} (step {step})"
            out.append(_md_row(str(length), LM_NAMES[model], " / ".join(steps), *cells, difference))
    return out


# ---- the host


def read_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's fields of a /proc/cpuinfo text, plus `processors`: how many there are."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    fields["processors"] = str(sum(line.startswith("processor") for line in text.splitlines()))
    return fields


def host_line(cpuinfo: dict[str, str]) -> str:
    """The CPU as lscpu names it (model name, family/model), its processors and its bf16 units."""
    flags = set(cpuinfo.get("flags", "").split())
    found = [flag for flag in BF16_FLAGS if flag in flags]
    units = (
        "bf16 units: " + ", ".join(f"`{flag}`" for flag in found if "bf16" in flag)
        if flags & {"amx_bf16", "avx512_bf16"}
        else "no `amx_bf16` or `avx512_bf16` (no bf16 units: bf16 arithmetic is emulated)"
    )
    return (
        f"{cpuinfo.get('model name', 'unknown CPU')} (family {cpuinfo.get('cpu family', '?')}, "
        f"model {cpuinfo.get('model', '?')}), {cpuinfo.get('processors', '?')} CPUs; {units}; "
        f"vector flags: {', '.join(f'`{flag}`' for flag in found) or 'none of ' + ', '.join(BF16_FLAGS)}; "
        f"torch {torch.__version__}"
    )


def host_cpuinfo() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo")
    return read_cpuinfo(cpuinfo.read_text() if cpuinfo.is_file() else "")


# ---- speed


def _pretraining_speed(folder: Path) -> float:
    saved = folder / "results.json"
    if not saved.is_file():
        return math.nan
    results = json.loads(saved.read_text())
    # The loop's own rate (training steps only, this process): a stopped and resumed pretraining's
    # train_runtime also counts the time it stood still.
    if (rate := results.get("tokens_per_second")) is not None:
        return float(rate)
    return results["tokens_seen"] / max(results["train_runtime"], 1e-9)


def _cell_seconds(rows: list[dict], architecture: str, bf16: bool) -> float:
    seconds = [
        row["wall_time"]
        for row in rows
        if architecture_of(row["arm"]) == architecture
        and row["arm"].endswith(BF16_SUFFIX) == bf16
        and row.get("wall_time") is not None
    ]
    return statistics.mean(seconds) if seconds else math.nan


def speed_lines(
    pretrainings: dict[int, dict[str, dict[str, Path]]], rows_by_length: dict[int, list[dict]]
) -> list[str]:
    """Pretraining tokens/s and the mean fine-tuning cell's seconds, fp32 and bf16, per model and T."""
    out = [
        _md_row("T", "model", "pretraining fp32 (tokens/s)", "bf16", "bf16 / fp32")
        + _md_row("fine-tuning cell fp32 (s)", "bf16", "bf16 / fp32")[1:]
    ]
    out += ["|---|---|---|---|---|---|---|---|"]

    def ratio(a: float, b: float) -> str:
        return "—" if math.isnan(a) or math.isnan(b) else f"{a / b:.2f}×"

    def number(value: float, digits: int = 0) -> str:
        return "—" if math.isnan(value) else f"{value:,.{digits}f}"

    for length, models in sorted(pretrainings.items()):
        rows = rows_by_length.get(length, [])
        for model, folders in models.items():
            fp32, bf16 = (_pretraining_speed(folders[p]) for p in ("fp32", "bf16"))
            cell_fp32, cell_bf16 = (_cell_seconds(rows, model, bf16=b) for b in (False, True))
            out.append(
                f"| {length} | {MODELS[model]} | {number(fp32)} | {number(bf16)} | {ratio(bf16, fp32)} | "
                f"{number(cell_fp32, 1)} | {number(cell_bf16, 1)} | {ratio(cell_bf16, cell_fp32)} |"
            )
    return out


# ---- rounded vs real bf16


def _norm_at(curve: list[float], distance: int) -> float:
    """The gradient norm `distance` positions before the predicted token (the last position)."""
    return curve[len(curve) - 1 - distance]


def rounded_vs_real_lines(
    rounded_dir: Path,
    rows_by_length: dict[int, list[dict]],
    losses: dict[str, dict],
    curves_by_length: dict[int, dict[str, list[float]]],
) -> list[str]:
    """This run's LSTM figures beside a rounded-bf16 run's (its report folder: results_T<T>.jsonl,
    lm_loss.json, gradient_flow_T<T>.json): accuracy difference, LM loss, gradient norms."""
    out = [
        _md_row("T", "arm", "rounded: bf16 − fp32 (points)", "real: bf16 − fp32 (points)")
        + _md_row("rounded fp32 / bf16 (%)", "real fp32 / bf16 (%)")[1:]
    ]
    out += ["|---|---|---|---|---|---|"]
    for length in sorted(rows_by_length):
        saved = rounded_dir / f"results_T{length}.jsonl"
        if not saved.is_file():
            continue
        rounded = {(c.baseline, c.budget): c for c in bf16_effect(summarize(load_results(saved)))}
        lstm_rows = [row for row in rows_by_length[length] if architecture_of(row["arm"]) == "lstm"]
        for real in bf16_effect(summarize(lstm_rows)):
            if (before := rounded.get((real.baseline, real.budget))) is None:
                continue
            out.append(
                f"| {length} | `{real.baseline}` | {_points(before)} | {_points(real)} | "
                f"{100 * before.baseline_mean:.1f} / {100 * before.arm_mean:.1f} | "
                f"{100 * real.baseline_mean:.1f} / {100 * real.arm_mean:.1f} |"
            )
    if len(out) == 2:
        out.append("| — | no LSTM cell of this run has a rounded twin yet | | | | |")
    if (saved_losses := rounded_dir / "lm_loss.json").is_file():
        rounded_losses = json.loads(saved_losses.read_text())
        out += ["", "| T | LSTM LM validation loss, last common step | fp32 | bf16 | bf16 − fp32 (nats) |"]
        out += ["|---|---|---|---|---|"]
        for length in sorted(set(rounded_losses) & set(losses), key=int):
            for run, table in (("rounded", rounded_losses), ("real", losses)):
                curves = table[length].get("lstm", {})
                if (step := last_common_step(curves.get("fp32", {}), curves.get("bf16", {}))) is not None:
                    fp32, bf16 = curves["fp32"][step], curves["bf16"][step]
                    out.append(
                        f"| {length} | {run} (step {step}) | {fp32:.3f} | {bf16:.3f} | {bf16 - fp32:+.3f} |"
                    )
    for length, curves in sorted(curves_by_length.items()):
        saved = rounded_dir / f"gradient_flow_T{length}.json"
        if not saved.is_file() or not curves:
            continue
        rounded_curves = json.loads(saved.read_text())
        distances = [d for d in GRADIENT_DISTANCES if d < length]
        out += [
            "",
            f"| T = {length}: ‖∂ loss / ∂ input‖ at distance | " + " | ".join(map(str, distances)) + " |",
        ]
        out += ["|---|" + "---|" * len(distances)]
        for run, table in (("rounded", rounded_curves), ("real", curves)):
            for label, curve in table.items():
                norms = " | ".join(f"{_norm_at(curve, d):.1e}" for d in distances)
                out.append(f"| {run}: {label} | {norms} |")
    return out


def _md_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _points(c: Comparison) -> str:
    half = "n/a" if math.isnan(c.half_width) else f"{100 * c.half_width:.1f}"
    return f"{100 * c.difference:+.1f} ± {half}"


def accuracy_lines(rows_by_length: dict[int, list[dict]]) -> list[str]:
    out = ["## Test accuracy: bf16 − fp32", ""]
    out += [
        "Mean test accuracy over seeds; the difference is paired by seed (a seed fixes the label "
        "subset and the initialisation) with its 95% Student-t interval.",
        "",
    ]
    out += [
        _md_row("T", "model", "arm", "what bf16 changes", "labels", "bf16 (%)", "fp32 (%)")
        + _md_row("bf16 − fp32 (points, 95% CI)", "method")[1:]
    ]
    out += ["|---|---|---|---|---|---|---|---|---|"]
    for length, c, changes in accuracy_comparisons(rows_by_length):
        out.append(
            f"| {length} | {MODELS.get(architecture_of(c.baseline), architecture_of(c.baseline))} | "
            f"`{c.baseline}` | {changes} | {c.budget} | {100 * c.arm_mean:.1f} | "
            f"{100 * c.baseline_mean:.1f} | {_points(c)} | {c.method} |"
        )
    return out


def gradient_lines(length: int, curves: dict[str, list[float]]) -> list[str]:
    """One row per gradient-norm curve at GRADIENT_DISTANCES (those shorter than T)."""
    distances = [d for d in GRADIENT_DISTANCES if d < length]
    out = [f"| T = {length}, distance | " + " | ".join(map(str, distances)) + " |"]
    out += ["|---|" + "---|" * len(distances)]
    return out + [
        f"| {label} | " + " | ".join(f"{_norm_at(curve, d):.1e}" for d in distances) + " |"
        for label, curve in curves.items()
    ]
