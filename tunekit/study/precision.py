"""Does the LSTM really need fp32? The evidence from LSTM studies run with `lstm_bf16_recurrence`.

For each study (one per sequence length T) this reads what the study left on disk and writes:
- the language-model loss curves of the fp32- and bf16-recurrence pretrainings (metrics.jsonl);
- the test-accuracy difference bf16 - fp32 per label budget, with paired 95% intervals;
- the speed of both recurrences (pretraining tokens per second);
- gradient norms across time steps (`gradient_flow`) of both language models, each with its
  recurrence in fp32 and in bf16, on the same validation blocks.
"""

import gzip
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tunekit.data.tokenization import load_tokenizer
from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMModel
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.gradient_flow import input_gradient_norms, plot_gradient_flow
from tunekit.study.report import bf16_effect, load_results, summarize

# The CPU study's WordPiece size: the speed table times an embedding of the same size.
SPEED_VOCAB_SIZE = 8192
PRETRAININGS = {"fp32 recurrence": "lstm", "bf16 recurrence": "lstm_bf16"}
# The ways a recurrence can run: LSTMConfig fields, and whether the pass runs under bf16 autocast.
RECURRENCES = {
    "fp32": ({}, False),
    "bf16 (autocast)": ({"fp32_recurrence": False}, True),
    "bf16 (fp32 rounded to bf16)": ({"recurrence_rounding": "bfloat16"}, False),
}


@dataclass
class PrecisionArguments:
    study_dirs: list[str] = field(
        default_factory=list, metadata={"help": "One LSTM study (lstm_bf16_recurrence: true) per length."}
    )
    lengths: list[int] = field(default_factory=list, metadata={"help": "The sequence length of each study."})
    texts_file: str = field(
        default="", metadata={"help": "JSON lines (.gz ok) with a 'text' field to probe on."}
    )
    speed_hidden_size: int = field(default=128, metadata={"help": "LSTM width for the speed table."})
    speed_batch_tokens: int = field(default=4096, metadata={"help": "Tokens per pass in the speed table."})
    num_blocks: int = field(default=16, metadata={"help": "Blocks of T tokens for the gradient-flow probe."})
    output_dir: str = field(default="outputs/lstm_precision/report", metadata={"help": "Report and figures."})
    title_note: str = field(default="", metadata={"help": "Appended to the title, e.g. ' (smoke run)'."})

    def __post_init__(self) -> None:
        if not self.study_dirs or len(self.study_dirs) != len(self.lengths):
            raise TunekitError(
                f"lengths: give one length per study dir ({self.lengths} vs {self.study_dirs})"
            )
        if not Path(self.texts_file).is_file():
            raise TunekitError(f"texts_file: {self.texts_file!r} is not a file")


def read_texts(path: str | Path, count: int) -> list[str]:
    """The 'text' field of the first `count` lines of a JSON-lines file (gzip if it ends in .gz)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            texts.append(json.loads(line)["text"])
            if len(texts) >= count:
                break
    return texts


def _metrics(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


def blocks_of(tokenizer, texts: list[str], length: int, count: int) -> torch.Tensor:
    """`count` blocks of exactly `length` token ids, packed from `texts` as the pretraining packs them."""
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=True)["input_ids"]
        if len(ids) >= length * count:
            break
    if len(ids) < length * count:
        raise TunekitError(f"texts: {len(ids)} tokens are too few for {count} blocks of {length}")
    return torch.tensor(ids[: length * count]).view(count, length)


def gradient_curves(study_dir: Path, input_ids: torch.Tensor) -> dict[str, list[float]]:
    """Both language models of one study, each probed with its recurrence in fp32 and in bf16,
    the way the study's bf16 arms ran it: under bf16 autocast, or rounded without autocast."""
    models = {
        trained: LSTMForLanguageModeling.from_pretrained(study_dir / "pretrain" / name)
        for trained, name in PRETRAININGS.items()
        if (study_dir / "pretrain" / name / "config.json").is_file()
    }
    bf16_model = models.get("bf16 recurrence")
    autocast = bf16_model is None or bf16_model.config.recurrence_rounding is None
    curves = {}
    for trained, model in models.items():
        for probe, fp32 in (("fp32", True), ("bf16", False)):
            label = f"LM trained with {trained}, probed in {probe}"
            curves[label] = input_gradient_norms(
                model, input_ids, autocast_bf16=autocast, fp32_recurrence=fp32
            )
    return curves


def recurrence_speed(hidden_size: int, length: int, batch_tokens: int, repeats: int = 3) -> dict[str, float]:
    """Tokens/s of a biLSTM's forward+backward (embedding and recurrence, no head) in each of
    RECURRENCES, on the CPU, after one untimed pass; the median of `repeats`."""
    generator = torch.Generator().manual_seed(length)
    input_ids = torch.randint(
        1, SPEED_VOCAB_SIZE, (max(batch_tokens // length, 1), length), generator=generator
    )
    speeds = {}
    for label, (fields, autocast) in RECURRENCES.items():
        torch.manual_seed(0)
        model = LSTMModel(
            LSTMConfig(vocab_size=SPEED_VOCAB_SIZE, hidden_size=hidden_size, dropout=0.0, **fields)
        )
        seconds = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                states = model(input_ids)
            states.float().square().mean().backward()
            seconds.append(time.perf_counter() - started)
        speeds[label] = input_ids.numel() / statistics.median(seconds[1:])
    return speeds


def plot_loss_curves(path: Path, studies: dict[int, Path], title_note: str = "") -> None:
    """Training (lines) and validation (markers) LM loss against step, one panel per T."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(studies), 4), dpi=150)
    for i, (length, study_dir) in enumerate(sorted(studies.items()), 1):
        ax = figure.add_subplot(1, len(studies), i)
        for (label, name), color in zip(PRETRAININGS.items(), ("#d94801", "#7f2704"), strict=True):
            records = _metrics(study_dir / "pretrain" / name / "metrics.jsonl")
            train = [(r["step"], r["loss"]) for r in records if "loss" in r]
            evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
            if train:
                ax.plot(*zip(*train, strict=True), "-", marker=".", color=color, label=f"{label}, train")
            if evals:
                ax.plot(*zip(*evals, strict=True), "o", color=color, label=f"{label}, validation")
        ax.set(xlabel="optimizer step", ylabel="LM loss (nats/token)", title=f"T = {length}{title_note}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


def _cpu_bf16_flags() -> str:
    """The CPU's bf16 units as /proc/cpuinfo names them: without them a bf16 matmul is emulated."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    found = sorted(flags & {"amx_bf16", "avx512_bf16"})
    return (
        ", ".join(f"`{flag}`" for flag in found)
        if found
        else "no `amx_bf16` or `avx512_bf16` (no bf16 units)"
    )


def _speed(study_dir: Path) -> dict[str, float]:
    speeds = {}
    for label, name in PRETRAININGS.items():
        results = study_dir / "pretrain" / name / "results.json"
        if results.is_file():
            saved = json.loads(results.read_text())
            speeds[label] = saved["tokens_seen"] / max(saved["train_runtime"], 1e-9)
    return speeds


def write_precision_report(
    studies: dict[int, Path],
    texts: list[str],
    output_dir: Path,
    *,
    blocks: int = 16,
    speed_hidden_size: int = 128,
    speed_batch_tokens: int = 4096,
    title_note: str = "",
    texts_source: str = "the given texts",
) -> Path:
    """precision.md, lm_loss.png and gradient_flow_T<T>.png under `output_dir`; returns the report."""
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_loss_curves(output_dir / "lm_loss.png", studies, title_note)
    out = [f"# LSTM recurrence: bf16 vs fp32{title_note}", ""]
    out += ["## Language-model loss", "", "![LM loss curves](lm_loss.png)", ""]
    out += _accuracy_section(studies)
    out += _speed_sections(studies, speed_hidden_size, speed_batch_tokens)
    out += ["", "## Gradient norms across time steps", ""]
    out += [
        "‖∂ loss / ∂ input embedding‖ at each position, for the loss of the forward direction's last "
        f"prediction, mean over {blocks} blocks of {texts_source}, with the recurrence in bf16 the way "
        "the study's bf16 arms ran it (`tunekit.study.gradient_flow`).",
        "",
    ]
    for length, study_dir in sorted(studies.items()):
        probe_blocks = _blocks_of_texts(study_dir, texts, length, blocks)
        out += _gradient_figure(study_dir, length, probe_blocks, output_dir, title_note)
    path = output_dir / "precision.md"
    path.write_text("\n".join(out) + "\n")
    return path


def _accuracy_section(studies: dict[int, Path]) -> list[str]:
    out = ["## Test accuracy: bf16 − fp32 recurrence", ""]
    out += ["| T | arm | labels | bf16 (%) | fp32 (%) | bf16 − fp32 (points, 95% CI) | method |"]
    out += ["|---|---|---|---|---|---|---|"]
    for length, study_dir in sorted(studies.items()):
        if not (study_dir / "results.jsonl").is_file():
            continue
        for c in bf16_effect(summarize(load_results(study_dir / "results.jsonl"))):
            half = "n/a" if math.isnan(c.half_width) else f"{100 * c.half_width:.1f}"
            out.append(
                f"| {length} | `{c.baseline}` | {c.budget} | {100 * c.arm_mean:.1f} | "
                f"{100 * c.baseline_mean:.1f} | {100 * c.difference:+.1f} ± {half} | {c.method} |"
            )
    return out


def _speed_sections(studies: dict[int, Path], hidden_size: int, batch_tokens: int) -> list[str]:
    """The LM pretrainings' measured tokens/s, then the recurrence alone timed here and now."""
    out = ["", "## Speed of the language-model pretraining (tokens/s)", ""]
    out += ["| T | fp32 recurrence | bf16 recurrence |", "|---|---|---|"]
    for length, study_dir in sorted(studies.items()):
        speed = _speed(study_dir)
        out.append(
            f"| {length} | " + " | ".join(f"{speed.get(k, math.nan):,.0f}" for k in PRETRAININGS) + " |"
        )
    out += ["", "## Speed of the recurrence alone on this CPU (tokens/s, forward + backward)", ""]
    out += [
        f"A biLSTM of {hidden_size} per direction (`recurrence_speed`), {batch_tokens} tokens "
        f"per pass; CPU flags: {_cpu_bf16_flags()}.",
        "",
        "| T | " + " | ".join(RECURRENCES) + " |",
        "|---|" + "---|" * len(RECURRENCES),
    ]
    for length in sorted(studies):
        speed = recurrence_speed(hidden_size, length, batch_tokens)
        out.append(f"| {length} | " + " | ".join(f"{speed[k]:,.0f}" for k in RECURRENCES) + " |")
    return out


def _blocks_of_texts(study_dir: Path, texts: list[str], length: int, count: int) -> torch.Tensor:
    """`count` blocks of `length` tokens of `texts`, in the study's own tokenizer."""
    tokenizer = load_tokenizer(str(study_dir / "tokenizer"), "tokenizer_name_or_path")
    return blocks_of(tokenizer, texts, length, count)


def _gradient_figure(
    study_dir: Path, length: int, blocks: torch.Tensor, output_dir: Path, title_note: str
) -> list[str]:
    """gradient_flow_T<T>.png and .json for one study; the report's lines for it."""
    curves = gradient_curves(study_dir, blocks)
    if not curves:
        return []
    name = f"gradient_flow_T{length}.png"
    title = f"Gradient flow back from the last token, T = {length}{title_note}"
    plot_gradient_flow(output_dir / name, curves, title=title)
    (output_dir / f"gradient_flow_T{length}.json").write_text(json.dumps(curves) + "\n")
    return [f"![gradient flow, T = {length}]({name})", ""]
