"""tunekit vs the transformers Trainer, in one process: pretraining tokens/s, fine-tuning examples/s.

For every case of a preset, tunekit's leg runs first (its optimizer implementation is then given
to the Trainer), then the Trainer leg(s), on the same files, tokenizer, model config, sequence
length, batch, precision and AdamW settings. Each leg times N optimizer steps after W warm-up
steps (see `tunekit.benchmark.measure`).
"""

import gc
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import accelerate
import torch
import transformers
from transformers import AutoTokenizer, PretrainedConfig

from tunekit.benchmark.corpus import BenchmarkFiles, write_benchmark_files
from tunekit.benchmark.legs import LegResult, describe_optimizer, flops_per_token
from tunekit.benchmark.measure import MEMORY_NOTES
from tunekit.benchmark.presets import Case, Preset, get_preset
from tunekit.benchmark.profiling import LegProfiles
from tunekit.benchmark.table import Row, add_ratios
from tunekit.benchmark.trainer_legs import run_trainer_finetuning, run_trainer_pretraining, trainer_optim
from tunekit.benchmark.tunekit_legs import LABEL_NAMES, model_arguments, run_tunekit_leg, supports_compile
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.build import transformer_config
from tunekit.training.flops import peak_flops, utilisation

logger = logging.getLogger(__name__)


@dataclass
class BenchmarkReport:
    rows: list[Row]
    notes: list[str]
    meta: dict[str, str]


def check_preset(preset: Preset) -> None:
    """Fine-tuning's timed window must be its second epoch, of full batches only."""
    for case in preset.cases:
        epoch = preset.finetuning_examples // case.batch_size
        if case.task == "finetuning" and not case.warmup_steps == case.steps == epoch:
            raise TunekitError(
                f"preset {preset.name}: fine-tuning must warm up for one epoch and time the next "
                f"({epoch} steps of {case.batch_size} over {preset.finetuning_examples} examples)"
            )


def machine_description(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()} ({torch.cuda.device_count()} visible)"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"


def reference_config(case: Case, model_type: str, tokenizer_dir: Path) -> PretrainedConfig:
    """The config a Trainer user builds: tunekit's sizes, `vocab_size = len(tokenizer)`."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_args = model_arguments(case, model_type, tokenizer_dir)
    labels = {}
    if case.task == "finetuning":
        labels = {
            "num_labels": len(LABEL_NAMES),
            "id2label": dict(enumerate(LABEL_NAMES)),
            "label2id": {name: i for i, name in enumerate(LABEL_NAMES)},
        }
    config = transformer_config(model_args, tokenizer, **labels)
    config.vocab_size = len(tokenizer)
    return config


def to_row(case: Case, leg: LegResult, config: PretrainedConfig, device: str) -> Row:
    tokens_per_second = leg.tokens / leg.seconds
    mean_length = case.seq_len if case.task == "pretraining" else leg.tokens / max(1, leg.examples)
    usage = utilisation(flops_per_token(config, case, mean_length), tokens_per_second, device)
    return Row(
        task=case.task,
        model=case.encoder.name,
        system=leg.system,
        precision=case.precision,
        compile=case.compile,
        seq_len=case.seq_len,
        batch_size=case.batch_size,
        steps=case.steps,
        seconds=leg.seconds,  # unrounded: the JSON keeps exact figures, the Markdown rounds
        examples_per_second=leg.examples / leg.seconds,
        tokens_per_second=tokens_per_second,
        mfu=usage.mfu,
        peak_memory_mib=leg.peak_memory_mib,
        optimizer=describe_optimizer(leg.optimizer),
        cpu_seconds=round(leg.cpu_seconds, 3) if device == "cpu" else None,
    )


def _tokenizer_dirs(preset: Preset, files: BenchmarkFiles, root: Path) -> dict[int, Path]:
    """One WordPiece per vocabulary size, trained on the pretraining text and shared by every leg."""
    texts = [json.loads(line)["text"] for line in files.pretraining_train.read_text().splitlines()]
    dirs = {}
    for vocab_size in sorted({case.encoder.vocab_size for case in preset.cases}):
        dirs[vocab_size] = root / f"tokenizer_{vocab_size}"
        train_wordpiece(texts, vocab_size, 512).save_pretrained(dirs[vocab_size])
    return dirs


def run_case(
    case: Case,
    model_type: str,
    files: BenchmarkFiles,
    tokenizer_dir: Path,
    work: Path,
    device: str,
    profile_dir: Path | None = None,
) -> list[Row]:
    """tunekit's leg, then the Trainer's on the same case (with tunekit's AdamW implementation);
    with `profile_dir`, each leg's warm-up is profiled there (`tunekit.benchmark.profiling`)."""
    logger.info(
        "benchmark: %s %s %s compile=%s: tunekit", case.task, case.encoder.name, case.precision, case.compile
    )
    profiles = LegProfiles(profile_dir, case, torch.device(device))
    with profiles("tunekit"):
        tunekit_leg = run_tunekit_leg(case, model_type, files, tokenizer_dir, work, device)
    config = reference_config(case, model_type, tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    optim = trainer_optim(tunekit_leg.optimizer)
    logger.info("benchmark: the same case under the Trainer (optim=%s)", optim)
    if case.task == "pretraining":
        trainer_legs = run_trainer_pretraining(
            case, config, tokenizer, files.pretraining_train, work, device, optim, profiles
        )
    else:
        trainer_legs = run_trainer_finetuning(
            case, config, tokenizer, files.finetuning_train, work, device, optim, profiles
        )
    return [to_row(case, leg, config, device) for leg in (tunekit_leg, *trainer_legs)]


def run_benchmark(
    preset_name: str,
    data_dir: Path | None,
    model_type: str = "bert",
    warmup_steps: int | None = None,
    steps: int | None = None,
    tasks: tuple[str, ...] = ("pretraining", "finetuning"),
    compile_modes: tuple[bool, ...] = (False, True),
    finetuning_examples: int | None = None,
    on_case_done: Callable[[BenchmarkReport], None] | None = None,
    profile_dir: Path | None = None,
) -> BenchmarkReport:
    """Every case of the preset, tunekit then the Trainer. `on_case_done` gets the report so far
    after each case, so a run stopped from outside (a device call's deadline) keeps what it measured."""
    preset = get_preset(preset_name, warmup_steps, steps, tasks, compile_modes, finetuning_examples)
    check_preset(preset)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started, load_before = time.perf_counter(), _load_average()
    # Freezing what is alive now (mostly imported modules) keeps every full collection, the
    # benchmark's own between legs and the systems' during them, from rescanning it.
    gc.collect()
    gc.freeze()
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tunekit_benchmark_") as tmp:
        root = Path(tmp)
        files = write_benchmark_files(root / "data", preset, data_dir)
        tokenizer_dirs = _tokenizer_dirs(preset, files, root)
        for index, case in enumerate(preset.cases):
            if case.compile and not supports_compile():
                notes.append(
                    f"skipped {case.task} {case.encoder.name} with compile: "
                    "tunekit's TrainArguments has no torch_compile field"
                )
                continue
            tokenizer_dir = tokenizer_dirs[case.encoder.vocab_size]
            work = root / f"case_{index}"
            rows += run_case(case, model_type, files, tokenizer_dir, work, device, profile_dir)
            if on_case_done is not None and index + 1 < len(preset.cases):
                partial = _report(rows, notes, preset, model_type, device, started, load_before)
                partial.meta["partial"] = f"{index + 1} of {len(preset.cases)} cases"
                on_case_done(partial)
    gc.unfreeze()
    return _report(rows, notes, preset, model_type, device, started, load_before)


def _report(
    rows: list[Row],
    notes: list[str],
    preset: Preset,
    model_type: str,
    device: str,
    started: float,
    load_before: str,
) -> BenchmarkReport:
    add_ratios(rows)
    notes = notes + _notes(rows, device)
    meta = {
        "command": shlex.join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "run_benchmark()",
        "preset": preset.name,
        "model type": model_type,
        "device": machine_description(device),
        "versions": f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"accelerate {accelerate.__version__}, python {platform.python_version()}",
        "data": f"{preset.data}: {preset.pretraining_texts} pretraining texts, "
        f"{preset.finetuning_examples} fine-tuning reviews",
        "wall time": f"{time.perf_counter() - started:.0f} s",
        # Other work on the machine slows the legs unevenly; the load average says how much there was.
        "load average (1 min) before / after": f"{load_before} / {_load_average()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return BenchmarkReport(rows, notes, meta)


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def _notes(rows: list[Row], device: str) -> list[str]:
    notes = [
        "Each leg times N optimizer steps after W warm-up steps in one process (tunekit through torch's "
        "optimizer post-step hook, the Trainer through a TrainerCallback's on_step_end); the host waits "
        "for the device only when the window opens and closes.",
        "Throughput counts non-padding tokens (attention_mask) and examples of the timed steps' batches; "
        "pretraining compares tokens/s, fine-tuning examples/s.",
        MEMORY_NOTES["cuda" if device == "cuda" else "cpu"],
    ]
    if device == "cpu":
        notes.append(
            "CPU time: the same throughput over the process CPU time of the window (time.process_time, "
            "all threads), and its ratios; on a machine shared with other work this is the steadier "
            "figure, since wall time also measures the leg's share of the cores."
        )
    optimizers = sorted({row.optimizer for row in rows})
    notes.append(
        f"Optimizer: AdamW lr/betas/eps/weight decay/clipping identical on both sides; implementation "
        f"{', '.join(optimizers)} (the Trainer is given tunekit's: adamw_torch_fused when tunekit's "
        "AdamW is fused, adamw_torch otherwise)."
    )
    if device != "cuda":
        notes.append(f"MFU: {peak_flops(device)[1]}.")
    else:
        notes.append(
            "MFU: model FLOPs (tunekit.training.flops, PaLM 6N + 12LdT) with the MLM head counted on the "
            "15 % masked tokens for every system; padding and a dense head count as waste."
        )
    return notes
