"""Does the LSTM need fp32 where a transformer trains in bf16? The talk's second claim, measured.

The evidence comes from studies run by docs/results/lstm_precision/run_on_cpu.sh, one set per
sequence length T: an LSTM study with `lstm_bf16_recurrence` (its `*_bf16` arms run the recurrence
in bf16) and, optionally, the same transformer study twice, in fp32 and under bf16 autocast. From
what they left on disk this module writes one report:
- the test-accuracy difference bf16 - fp32 per arm, LSTM and transformer in one table, with paired
  95% intervals over seeds;
- the language-model loss of each pretraining in each precision (curves and a table);
- speed: pretraining tokens/s and fine-tuning time per precision, and the recurrence alone;
- gradient norms across time steps of both LSTM language models, each with its recurrence in fp32
  and in bf16 on the same blocks (`input_gradient_norms`: the probe below);
- optionally, rounded vs real bf16: the same figures from an earlier run whose bf16 recurrence was
  fp32 rounded to bf16 after every operation (`lstm_bf16_rounded`), beside this run's.
"""

import gzip
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tunekit.data.tokenization import load_tokenizer
from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMModel
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.precision_tables import (
    LM_NAMES,
    MODELS,
    accuracy_lines,
    gradient_lines,
    host_cpuinfo,
    host_line,
    lm_loss_lines,
    lm_losses,
    pretraining_dirs,
    read_metrics,
    rounded_vs_real_lines,
    speed_lines,
    study_rows,
    transformer_rows,
)

# The CPU study's WordPiece size: the speed table times an embedding of the same size.
SPEED_VOCAB_SIZE = 8192
PRETRAININGS = {"fp32 recurrence": "lstm", "bf16 recurrence": "lstm_bf16"}
# The ways a recurrence can run: LSTMConfig fields, and whether the pass runs under bf16 autocast.
RECURRENCES = {
    "fp32": ({}, False),
    "bf16 (autocast)": ({"fp32_recurrence": False}, True),
    "bf16 (fp32 rounded to bf16)": ({"recurrence_rounding": "bfloat16"}, False),
}


# Gradient flow through an LSTM over time: does a bf16 recurrence make gradients vanish sooner?


def input_gradient_norms(
    model: LSTMForLanguageModeling,
    input_ids: torch.Tensor,
    *,
    autocast_bf16: bool,
    fp32_recurrence: bool,
) -> list[float]:
    """Mean over the batch of ||d loss_last / d x_t|| for t = 0..T-1 (the last is 0: it is the target).

    `autocast_bf16` runs the pass under bf16 autocast; `fp32_recurrence=False` then runs the
    recurrence itself in bf16 (as the study's `*_bf16` arms train), and without autocast rounds
    the fp32 recurrence to bf16 after every operation (`lstm_bf16_rounded` studies). Dropout is
    off (eval mode) and the model's own recurrence settings are restored afterwards.
    """
    if not isinstance(model, LSTMForLanguageModeling):
        raise TunekitError(
            f"model: the gradient-flow probe needs an LSTM language model, got {type(model).__name__}"
        )
    if input_ids.dim() != 2 or input_ids.shape[1] < 2:
        raise TunekitError(f"input_ids: need a (batch, T >= 2) tensor, got shape {tuple(input_ids.shape)}")
    captured: list[torch.Tensor] = []

    def keep_gradient(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        output.retain_grad()
        captured.append(output)

    was_training, saved = model.training, (model.config.fp32_recurrence, model.config.recurrence_rounding)
    model.eval()
    model.config.fp32_recurrence = fp32_recurrence
    model.config.recurrence_rounding = None if fp32_recurrence or autocast_bf16 else "bfloat16"
    handle = model.lstm.embeddings.register_forward_hook(keep_gradient)
    try:
        device = input_ids.device
        attention_mask = torch.ones_like(input_ids)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        last = input_ids.shape[1] - 2  # forward direction, position T-2 predicts token T-1
        loss = nn.functional.cross_entropy(logits[:, last].float(), input_ids[:, last + 1])
        model.zero_grad(set_to_none=True)
        loss.backward()
        (embedded,) = captured
        norms = embedded.grad.float().norm(dim=-1).mean(dim=0)
    finally:
        handle.remove()
        model.config.fp32_recurrence, model.config.recurrence_rounding = saved
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return [float(value) for value in norms]


def plot_gradient_flow(path: str | Path, curves: dict[str, list[float]], title: str) -> None:
    """Gradient norm (log y) against distance from the predicted token, one line per curve."""
    from matplotlib.figure import Figure

    if not curves:
        raise TunekitError(f"no gradient-norm curves to plot in {path}")
    figure = Figure(figsize=(8, 4.5), dpi=150)
    ax = figure.add_subplot()
    for (label, norms), style in zip(curves.items(), ("-", "--", "-.", ":") * 4, strict=False):
        values = np.asarray(norms[:-1])  # the last position is the target itself: no gradient
        distance = np.arange(len(values), 0, -1)  # t = 0 is T-1 tokens before the target
        ax.plot(distance, np.where(values > 0, values, np.nan), linestyle=style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(
        xlabel="distance from the predicted token (positions, log scale)",
        ylabel="‖∂ loss / ∂ input embedding‖ (log scale)",
        title=title,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


@dataclass
class PrecisionArguments:
    study_dirs: list[str] = field(
        default_factory=list, metadata={"help": "One LSTM study (lstm_bf16_recurrence: true) per length."}
    )
    lengths: list[int] = field(default_factory=list, metadata={"help": "The sequence length of each study."})
    transformer_dirs: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Per length, in the order of `lengths`: the transformer study run in fp32, then the "
            "same study run under bf16 autocast (empty: no transformer rows)."
        },
    )
    rounded_report_dir: str = field(
        default="",
        metadata={
            "help": "A report folder of a rounded-bf16 run (results_T<T>.jsonl, gradient_flow_T<T>.json, "
            "lm_loss.json) to compare this run with; empty: no comparison."
        },
    )
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
        if self.transformer_dirs and len(self.transformer_dirs) != 2 * len(self.lengths):
            raise TunekitError(
                f"transformer_dirs: give two per length (fp32, then bf16), {2 * len(self.lengths)} in all; "
                f"got {len(self.transformer_dirs)}"
            )
        if self.rounded_report_dir and not Path(self.rounded_report_dir).is_dir():
            raise TunekitError(f"rounded_report_dir: {self.rounded_report_dir!r} is not a folder")
        if not Path(self.texts_file).is_file():
            raise TunekitError(f"texts_file: {self.texts_file!r} is not a file")

    def studies(self) -> dict[int, Path]:
        return {length: Path(d) for length, d in zip(self.lengths, self.study_dirs, strict=True)}

    def transformer_studies(self) -> dict[int, tuple[Path, Path]]:
        pairs = zip(self.transformer_dirs[::2], self.transformer_dirs[1::2], strict=True)
        return {
            length: (Path(fp32), Path(bf16)) for length, (fp32, bf16) in zip(self.lengths, pairs, strict=True)
        }


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


def plot_loss_curves(
    path: Path, pretrainings: dict[int, dict[str, dict[str, Path]]], title_note: str = ""
) -> None:
    """Training (lines) and validation (markers) loss against step: one panel per model and T
    (an LSTM's next-token loss and an MLM's masked-token loss are not on one scale)."""
    from matplotlib.figure import Figure

    lengths = sorted(pretrainings)
    models = [m for m in MODELS if any(m in pretrainings[length] for length in lengths)]
    figure = Figure(figsize=(5 * len(lengths), 4 * len(models)), dpi=150)
    for row, model in enumerate(models):
        for column, length in enumerate(lengths):
            ax = figure.add_subplot(len(models), len(lengths), row * len(lengths) + column + 1)
            folders = pretrainings[length].get(model, {})
            # fp32 solid blue, bf16 dashed orange: the curves mostly lie on top of each other.
            styles = (("#2171b5", "-"), ("#d94801", "--"))
            for (precision, folder), (color, line) in zip(folders.items(), styles, strict=False):
                records = read_metrics(folder / "metrics.jsonl")
                train = [(r["step"], r["loss"]) for r in records if "loss" in r]
                evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
                if train:
                    ax.plot(
                        *zip(*train, strict=True), line, marker=".", color=color, label=f"{precision}, train"
                    )
                if evals:
                    ax.plot(*zip(*evals, strict=True), "o", color=color, label=f"{precision}, validation")
            title = f"{LM_NAMES[model]}, T = {length}{title_note}"
            ax.set(xlabel="optimizer step", ylabel="loss (nats/token)", title=title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


# ---- the report


def write_precision_report(
    studies: dict[int, Path],
    texts: list[str],
    output_dir: Path,
    *,
    transformer_studies: dict[int, tuple[Path, Path]] | None = None,
    rounded_report_dir: Path | None = None,
    blocks: int = 16,
    speed_hidden_size: int = 128,
    speed_batch_tokens: int = 4096,
    title_note: str = "",
    texts_source: str = "the given texts",
) -> Path:
    """precision.md, lm_loss.png, lm_loss.json, gradient_flow_T<T>.png/.json, results_T<T>.jsonl
    (LSTM) and results_T<T>_transformer.jsonl (both precisions, bf16 arms suffixed) and host.txt
    under `output_dir`; returns the report."""
    transformer_studies = transformer_studies or {}
    output_dir.mkdir(parents=True, exist_ok=True)
    pretrainings = pretraining_dirs(studies, transformer_studies)
    rows_by_length = study_rows(studies, transformer_studies)
    losses = lm_losses(pretrainings)
    (output_dir / "lm_loss.json").write_text(json.dumps(losses, indent=1) + "\n")
    _copy_results(studies, transformer_studies, output_dir)
    cpuinfo = host_cpuinfo()
    (output_dir / "host.txt").write_text(
        f"model name: {cpuinfo.get('model name')}\ncpu family: {cpuinfo.get('cpu family')}\n"
        f"model: {cpuinfo.get('model')}\nprocessors: {cpuinfo.get('processors')}\n"
        f"flags: {cpuinfo.get('flags')}\ntorch: {torch.__version__}\n"
    )
    plot_loss_curves(output_dir / "lm_loss.png", pretrainings, title_note)
    curves_by_length = {}
    for length, study_dir in sorted(studies.items()):
        if any((study_dir / "pretrain" / name / "config.json").is_file() for name in PRETRAININGS.values()):
            probe_blocks = _blocks_of_texts(study_dir, texts, length, blocks)
            curves_by_length[length] = _gradient_figure(
                study_dir, length, probe_blocks, output_dir, title_note
            )

    title = "LSTM vs transformer: bf16 vs fp32" if transformer_studies else "LSTM recurrence: bf16 vs fp32"
    out = [f"# {title}{title_note}", "", f"**Host** (where the report ran): {host_line(cpuinfo)}.", ""]
    out += accuracy_lines(rows_by_length)
    out += ["", "## Language-model loss (validation, nats/token)", "", *lm_loss_lines(losses), ""]
    out += ["![LM loss curves](lm_loss.png)", ""]
    if rounded_report_dir is not None:
        out += ["## Rounded vs real bf16 (LSTM)", ""]
        out += [
            f"The rounded run (`{rounded_report_dir}`): fp32 arithmetic rounded to bf16 after every "
            "operation of the recurrence, no autocast anywhere. This run: the bf16 arms' recurrence "
            "computed in bf16 under bf16 autocast; where both ran under autocast, the fp32 arms keep "
            "only the recurrence in fp32.",
            "",
        ]
        out += rounded_vs_real_lines(rounded_report_dir, rows_by_length, losses, curves_by_length)
        out += [""]
    out += ["## Speed", ""]
    out += [
        "Measured by the runs themselves (pretraining tokens/s without evaluation; a fine-tuning "
        "cell's wall time, evaluation included).",
        "",
    ]
    out += speed_lines(pretrainings, rows_by_length)
    out += _recurrence_speed_section(studies, speed_hidden_size, speed_batch_tokens, cpuinfo)
    out += ["", "## Gradient norms across time steps (LSTM)", ""]
    out += [
        "‖∂ loss / ∂ input embedding‖ at each position, for the loss of the forward direction's last "
        f"prediction, mean over {blocks} blocks of {texts_source}, with the recurrence in bf16 the way "
        "the study's bf16 arms ran it (`tunekit.study.lstm_precision.input_gradient_norms`).",
        "",
    ]
    for length, curves in sorted(curves_by_length.items()):
        if curves:
            out += [
                *gradient_lines(length, curves),
                "",
                f"![gradient flow, T = {length}](gradient_flow_T{length}.png)",
                "",
            ]
    path = output_dir / "precision.md"
    path.write_text("\n".join(out) + "\n")
    return path


def _copy_results(
    studies: dict[int, Path], transformer_studies: dict[int, tuple[Path, Path]], output_dir: Path
) -> None:
    """The cells behind the report, beside it: a later run compares with them (rounded_report_dir)."""
    for length, study_dir in studies.items():
        if (study_dir / "results.jsonl").is_file():
            (output_dir / f"results_T{length}.jsonl").write_text((study_dir / "results.jsonl").read_text())
    for length, (fp32_dir, bf16_dir) in transformer_studies.items():
        if rows := transformer_rows(fp32_dir, bf16_dir):
            (output_dir / f"results_T{length}_transformer.jsonl").write_text(
                "".join(json.dumps(row) + "\n" for row in rows)
            )


def _recurrence_speed_section(
    studies: dict[int, Path], hidden_size: int, batch_tokens: int, cpuinfo: dict[str, str]
) -> list[str]:
    """The recurrence alone, timed here and now in its three ways."""
    out = ["", "### The recurrence alone on this CPU (tokens/s, forward + backward)", ""]
    out += [
        f"A biLSTM of {hidden_size} per direction (`recurrence_speed`), {batch_tokens} tokens "
        f"per pass, timed when the report was written, on the host above ({_bf16_units(cpuinfo)}).",
        "",
        "| T | " + " | ".join(RECURRENCES) + " |",
        "|---|" + "---|" * len(RECURRENCES),
    ]
    for length in sorted(studies):
        speed = recurrence_speed(hidden_size, length, batch_tokens)
        out.append(f"| {length} | " + " | ".join(f"{speed[k]:,.0f}" for k in RECURRENCES) + " |")
    return out


def _bf16_units(cpuinfo: dict[str, str]) -> str:
    flags = set(cpuinfo.get("flags", "").split())
    return "with bf16 units" if flags & {"amx_bf16", "avx512_bf16"} else "no bf16 units: bf16 is emulated"


def _blocks_of_texts(study_dir: Path, texts: list[str], length: int, count: int) -> torch.Tensor:
    """`count` blocks of `length` tokens of `texts`, in the study's own tokenizer."""
    tokenizer = load_tokenizer(str(study_dir / "tokenizer"), "tokenizer_name_or_path")
    return blocks_of(tokenizer, texts, length, count)


def _gradient_figure(
    study_dir: Path, length: int, blocks: torch.Tensor, output_dir: Path, title_note: str
) -> dict[str, list[float]]:
    """gradient_flow_T<T>.png and .json for one study; its curves (none without language models)."""
    curves = gradient_curves(study_dir, blocks)
    if curves:
        title = f"Gradient flow back from the last token, T = {length}{title_note}"
        plot_gradient_flow(output_dir / f"gradient_flow_T{length}.png", curves, title=title)
        (output_dir / f"gradient_flow_T{length}.json").write_text(json.dumps(curves) + "\n")
    return curves
