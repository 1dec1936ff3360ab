"""The GPU run: a fixed plan of steps under one wall-clock deadline, whose results always come back.

A lent GPU gives a few minutes in all, so nothing here is exploratory: `scripts/gpu_run.sh` runs a
plan decided in advance (`plan_steps`), each step in its own process with a time cap, and whatever
happens (a step fails, the deadline cuts the study) the `finally` rebuilds the study report from
the cells that finished and packs everything into one archive under $OUT. The study records each
cell as it finishes, so a second call that restores the archive (`restore_previous`) continues
where the first stopped. `SMOKE=1` runs the very same plan on CPU at tiny sizes.

The plan: what the GPU run does, in order of value, and the same plan at smoke size for CPU.

Phase 1 (one device call, ~8 min): (a) environment, (b) the eager benchmark against the Trainer,
(c) the IMDb study: pretraining sized from (b)'s measured tokens/s, then every arm and label budget
at seed 0, then seeds 1 and 2, until the deadline. Phase 2 (a second call at once, on the machine
phase 1 left warm, in the same run directory; or on a fresh one that restores phase 1's archive):
the rest of seed 0, stopping in time for the FSDP launcher check (FSDP on one process, the saved
model loads), then the single-GPU launcher, (d) the sequence-length figure, seeds 1 and 2, the
compiled benchmark, (e) the LSTM bf16-recurrence arms.
"""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tunekit.errors import TunekitError

# Left for packing the archive after the last step, whatever the steps did.
PACK_RESERVE_S = 30
# A step that gets less than this is skipped rather than started and killed at once.
MIN_STEP_S = 20
# What a stopped step gets between SIGTERM (finish the optimizer step, checkpoint) and SIGKILL.
GRACE_S = 15
# The device returns files of at most 16 MiB: the archive is cut into parts below that.
PART_BYTES = 15 * 1024 * 1024


@dataclass
class Step:
    name: str
    # A callable is resolved when the step starts, so it can read what earlier steps wrote.
    argv: list[str] | Callable[[], list[str]]
    budget_s: float  # the most this step may take; less when the deadline is nearer
    env: dict[str, str] = field(default_factory=dict)
    reserve_s: float = 0.0  # left before the deadline for the steps after this one


@dataclass
class StepResult:
    name: str
    status: str  # ok | failed | timed_out | skipped
    returncode: int | None
    wall_s: float
    log: str


def run_step(step: Step, deadline: float, log_dir: Path) -> StepResult:
    """Run one step in its own process group, stopped by SIGTERM at its cap and SIGKILL after grace."""
    log_path = log_dir / f"{step.name}.log"
    cap = min(step.budget_s, deadline - time.monotonic() - PACK_RESERVE_S - step.reserve_s)
    if cap < MIN_STEP_S:
        return StepResult(step.name, "skipped", None, 0.0, str(log_path))
    argv = step.argv() if callable(step.argv) else step.argv
    print(f"[gpu_run] {step.name}: up to {cap:.0f} s: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        try:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **step.env},
                start_new_session=True,
            )
        except OSError as error:  # e.g. the program is missing: this step fails, the plan goes on
            log.write(f"cannot start {argv[0]}: {error}\n")
            print(f"[gpu_run] {step.name}: failed to start ({error})", flush=True)
            return StepResult(step.name, "failed", None, 0.0, str(log_path))
        status = "ok"
        try:
            process.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            status = "timed_out"
            # SIGTERM to the step's own process only: it finishes its optimizer step, checkpoints
            # and stops its DataLoader workers itself (a worker killed first would fail the step
            # before it could checkpoint). Whatever is left after the grace dies with the group.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    with contextlib.suppress(ProcessLookupError):  # nothing the step started outlives it
        os.killpg(process.pid, signal.SIGKILL)
    if status == "ok" and process.returncode != 0:
        status = "failed"
    wall = time.monotonic() - started
    print(f"[gpu_run] {step.name}: {status} (exit {process.returncode}) in {wall:.0f} s", flush=True)
    if status == "failed":
        print("".join(log_path.read_text().splitlines(keepends=True)[-15:]), flush=True)
    return StepResult(step.name, status, process.returncode, round(wall, 1), str(log_path))


def run_plan(
    steps: list[Step], budget_s: float, run_dir: Path, finally_steps: list[Step], tag: str = ""
) -> list[StepResult]:
    """Run `steps` in order within `budget_s`, then `finally_steps` (e.g. the report) regardless.

    `tag` (e.g. "phase1") keeps each call's logs and summary apart when a second call runs in the
    same run directory on the same (still warm) machine."""
    deadline = time.monotonic() + budget_s
    log_dir = run_dir / "logs" / tag if tag else run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for step in steps:
            results.append(run_step(step, deadline, log_dir))
            if step.name == "env" and results[-1].status != "ok":
                break  # nothing else can work: say so at once
    finally:
        # The report needs only seconds; the pack reserve covers it.
        for step in finally_steps:
            results.append(run_step(step, deadline + PACK_RESERVE_S - 5, log_dir))
        summary = {"budget_s": budget_s, "steps": [asdict(result) for result in results]}
        (run_dir / f"steps{'_' + tag if tag else ''}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results


# Weights travel in an archive of their own: the results must come back even when the models would
# push the files past the device's return limit (8 files, 64 MiB together).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
RETURN_FILES, RETURN_BYTES = 8, 60 * 1024 * 1024


def _write_archive(run_dir: Path, archive: Path, exclude_dirs: tuple[str, ...], weights: bool) -> int:
    """The weights (`weights`) or everything else of `run_dir`, without `exclude_dirs`; its size."""

    def select(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        path = Path(info.name)
        if set(path.parts) & set(exclude_dirs):
            return None
        return info if info.isdir() or (path.suffix in WEIGHT_SUFFIXES) == weights else None

    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        # Relative to the run dir, so a later call restores it wherever its own run dir is.
        tar.add(run_dir, arcname=".", filter=select)
    return archive.stat().st_size


def _split(archive: Path) -> list[Path]:
    """The archive itself when small enough, else its < 16 MiB parts (the archive removed)."""
    if archive.stat().st_size <= PART_BYTES:
        return [archive]
    parts = []
    with archive.open("rb") as source:
        while chunk := source.read(PART_BYTES):
            part = archive.with_name(f"{archive.name}.part{len(parts):02d}")
            part.write_bytes(chunk)
            parts.append(part)
    archive.unlink()
    return parts


def pack(run_dir: Path, out_dir: Path, exclude_dirs: tuple[str, ...] = ("checkpoints", "runs")) -> list[Path]:
    """gpu_run.tar.gz: `run_dir` without checkpoints, event files and weights; then gpu_models.tar.gz:
    the weights, when they fit in what the device still returns. Both in parts of < 16 MiB."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive, models = out_dir / "gpu_run.tar.gz", out_dir / "gpu_models.tar.gz"
    results_size = _write_archive(run_dir, archive, exclude_dirs, weights=False)
    parts = _split(archive)
    models_size = _write_archive(run_dir, models, exclude_dirs, weights=True)
    if results_size + models_size > RETURN_BYTES or len(parts) - (-models_size // PART_BYTES) > RETURN_FILES:
        print(f"[gpu_run] the weights ({models_size / 2**20:.0f} MiB) stay behind", flush=True)
        models.unlink()
        return parts
    return parts + _split(models)


def restore_previous(previous_dir: Path, run_dir: Path) -> bool:
    """Unpack what an earlier call returned (the archives or their parts) so the study continues."""
    restored = False
    for stem in ("gpu_run.tar.gz", "gpu_models.tar.gz"):
        parts = sorted(previous_dir.glob(f"{stem}.part*")) or sorted(previous_dir.glob(stem))
        if not parts:
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        joined = run_dir.parent / f"previous_{stem}"
        with joined.open("wb") as target:
            for part in parts:
                target.write(part.read_bytes())
        with tarfile.open(joined) as tar:
            tar.extractall(run_dir, filter="data")
        joined.unlink()
        restored = True
    return restored


ENTRY_MODULES = (
    "tunekit.training.tasks",
    "tunekit.study",
    "tunekit.benchmark.trainer_comparison",
    "tunekit.hub.push",
)
REQUIRED_MODULES = ("torch", "transformers", "accelerate", "datasets", "evaluate", "tokenizers", "sklearn")


def environment_report(require_cuda: bool) -> dict[str, str]:
    """Versions and the device; one TunekitError line if a module or the GPU is missing."""
    import importlib

    versions = {"python": sys.version.split()[0]}
    # The entry points too, so a module tunekit needs and the image lacks fails here, at once.
    for name in (*REQUIRED_MODULES, *ENTRY_MODULES):
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise TunekitError(
                f"environment: cannot import {name} ({error}); carry its wheel in .whl/"
            ) from None
        if name in REQUIRED_MODULES:
            versions[name] = getattr(module, "__version__", "?")
    import torch

    if torch.cuda.is_available():
        versions["device"] = torch.cuda.get_device_name(0)
        versions["cuda"] = str(torch.version.cuda)
        versions["bf16"] = str(torch.cuda.is_bf16_supported())
    elif require_cuda:
        raise TunekitError("environment: no CUDA device visible to torch; run with SMOKE=1 for the CPU path")
    else:
        versions["device"] = "cpu"
    return versions


def compact_jsonl(source: Path, target: Path, rows: int | None = None) -> int:
    """Copy a JSONL(.gz) keeping only text and label, xz-compressed (30 % smaller than gzip: the
    device call carries at most 64 MiB). `rows` keeps that many, evenly spaced: IMDb's files are
    sorted by label, so even spacing keeps the classes balanced."""
    import gzip
    import lzma

    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    if rows is not None and rows < len(lines):
        lines = [lines[i * len(lines) // rows] for i in range(rows)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(target, "wt", encoding="utf-8", preset=9) as out:
        for line in lines:
            record = json.loads(line)
            out.write(json.dumps({"text": record["text"], "label": record["label"]}) + "\n")
    return len(lines)


# The plan: which steps a call runs, in order of value.

PY = sys.executable
SMOKE_SEQUENCE_LENGTH = [
    *["--lengths", "16", "32", "--batch_tokens", "256", "--hidden_size", "32", "--num_hidden_layers", "1"],
    *["--num_attention_heads", "2", "--intermediate_size", "64", "--vocab_size", "300"],
    *["--warmup", "1", "--repeats", "1"],
]


@dataclass
class PlanConfig:
    run_dir: Path  # everything a call produces; packed into the archive
    data_dir: Path  # train/test (and for phase 1 unsup) IMDb files
    smoke: bool
    phase: int
    pretrain_seconds: float = 60.0  # the transformer's share of phase 1; the LSTM LM matches its tokens

    @property
    def study_dir(self) -> Path:
        return self.run_dir / "study"


def _files(config: PlanConfig, *names: str) -> list[str]:
    return [str(next(config.data_dir.glob(f"{name}.jsonl*"))) for name in names]


def _study_argv(config: PlanConfig, pretrain_steps: int) -> list[str]:
    train, test = _files(config, "train", "test")
    # The same pretraining text in both calls (a resumed pretraining must see the same data); the
    # smaller copy a fresh second machine gets has no unsup split and only finishes pretraining.
    has_unsup = any(config.data_dir.glob("unsup.jsonl*"))
    pretrain_files = [*_files(config, "unsup"), train] if has_unsup else [train]
    if config.smoke:
        recipe = "recipes/tiny/study.yaml"
        stage = (
            "--max_seq_length 32 --hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 "
            "--intermediate_size 64 --vocab_size 400 --report_to none --disable_tqdm true"
        )
        extra = ["--budgets", "20", "--seeds", "0", "--min_finetune_steps", "4"]
        finetune = "--num_train_epochs 1 --eval_steps 0 --max_eval_samples 40 --label_names negative positive"
    else:
        recipe = "recipes/imdb/study.yaml"
        stage = (
            "--mixed_precision bf16 --dataloader_num_workers 4 --preprocessing_num_workers 8 "
            "--report_to none --disable_tqdm true"
        )
        extra = ["--min_finetune_steps", "150"]
        # Validation picks each cell's best step on 1 000 reviews (cheap to score every 100 steps);
        # every cell is tested on all 25 000 test reviews (max_eval_samples alone would cut them too).
        finetune = "--num_train_epochs 2 --eval_steps 100 --max_eval_samples 1000 --max_test_samples 25000"
    return [
        PY,
        "scripts/study.py",
        recipe,
        "--output_dir",
        str(config.study_dir),
        *extra,
        f"--stage_overrides={stage}",
        f"--pretrain_overrides=--train_file {' '.join(pretrain_files)} --train_split train "
        f"--test_file {test} --max_steps {pretrain_steps} --save_steps 0 --eval_steps 0",
        f"--finetune_overrides=--train_file {train} --test_file {test} {finetune}",
    ]


def pretrain_steps(config: PlanConfig, tokens_per_step: int, default: int) -> int:
    """Pretraining steps that fill `pretrain_seconds` at the tokens/s the benchmark measured for the
    IMDb encoder (bf16, tunekit); `default` when the benchmark did not get that far."""
    table = config.run_dir / "benchmark" / "benchmark_eager.json"
    if not table.is_file():
        return default
    rows = json.loads(table.read_text()).get("rows", [])
    rates = [
        row["tokens_per_second"]
        for row in rows
        if row.get("system") == "tunekit"
        and row.get("task") == "pretraining"
        and "imdb" in row.get("model", "")
    ]
    if not rates:
        return default
    return max(100, math.floor(max(rates) * config.pretrain_seconds / tokens_per_step))


def _launch(config: PlanConfig, launcher: str, name: str, *extra: str) -> list[str]:
    """A 10-step pretraining through `accelerate launch` with the study's tokenizer."""
    train = _files(config, "train")[0]
    recipe = "recipes/tiny/pretrain.yaml" if config.smoke else "recipes/imdb/pretrain.yaml"
    # Tokenizing the 25 000 reviews in 8 processes keeps the check short.
    small = [] if config.smoke else ["--preprocessing_num_workers", "8"]
    return [
        *[PY, "-m", "accelerate.commands.launch", "--config_file", f"recipes/accelerate/{launcher}.yaml"],
        # One process: the device has one GPU (fsdp.yaml says 2, for a two-GPU machine).
        *["--num_processes", "1"],
        *["scripts/pretrain.py", recipe, "--train_file", train, "--train_split", "train"],
        *["--max_steps", "10", "--save_steps", "0", "--report_to", "none", *small],
        *["--tokenizer_name_or_path", str(config.study_dir / "tokenizer")],
        *["--output_dir", str(config.run_dir / name)],
        *extra,
    ]


def plan_steps(config: PlanConfig) -> tuple[list[Step], list[Step]]:
    """(steps, finally_steps) for this phase."""
    run = config.run_dir
    env = Step("env", [PY, "scripts/gpu_run.py", "env", *(["--smoke"] if config.smoke else [])], 60)
    preset = "smoke" if config.smoke else "gpu"
    benchmark_argv = [
        *[PY, "scripts/benchmark.py", "--preset", preset, "--output_dir", str(run / "benchmark")],
        *["--data_dir", str(config.data_dir.parent)],  # the presets read <data_dir>/imdb/
        # The IMDb recipes' architecture: the study's pretraining is sized from this measurement
        # (BERT ran at 0.29x ModernBERT's tokens/s in tunekit on the H200, so it undersized it).
        *["--model_type", "modernbert"],
    ]
    # Eager first (phase 1, sizes the study's pretraining); compiled in phase 2. The eager run also
    # profiles 3 warm-up steps of every leg (benchmark/profiles/): where the H200's gap to the
    # Trainer goes, host or device, without a separate call (~2-3 s per leg).
    profiles = ["--profile_dir", str(run / "benchmark" / "profiles")]
    eager = [*benchmark_argv, "--compile", "off", "--name", "benchmark_eager", *profiles]
    benchmark = Step("benchmark", eager, 170)
    compiled = Step(
        "benchmark_compiled", [*benchmark_argv, "--compile", "on", "--name", "benchmark_compiled"], 150
    )

    def study_argv() -> list[str]:
        if config.smoke:
            return _study_argv(config, 10)
        return _study_argv(config, pretrain_steps(config, tokens_per_step=128 * 256, default=6000))

    # Seed 0 of every arm and label budget first: one complete row of the table is worth more
    # than three seeds of the small budgets. The study reuses finished cells, so the second step
    # only adds seeds 1 and 2.
    first_seed = Step("study_seed0", lambda: [*study_argv(), "--seeds", "0"], 10_000)
    study = Step("study", study_argv, 10_000)
    report = Step("study_report", lambda: [*study_argv(), "--report_only", "true"], 60)
    if config.phase == 1:
        # The study takes what is left; its argv is built when it starts, after the benchmark has
        # measured the tokens/s that size its pretraining.
        return [env, benchmark, first_seed, study], [report]
    sequence_length = Step(
        "sequence_length",
        [
            *[PY, "scripts/sequence_length.py", "--output_dir", str(run / "sequence_length")],
            *(SMOKE_SEQUENCE_LENGTH if config.smoke else ["--device", "cuda", "--precision", "bf16"]),
        ],
        90,
    )
    launcher = "cpu" if config.smoke else "single_gpu"
    # It also counts the host-device syncs inside its steps (metrics.jsonl: host_syncs, expected 0).
    single = Step(
        "accelerate_single_gpu", _launch(config, launcher, "single_gpu", "--debug_host_syncs", "true"), 90
    )
    if config.smoke:
        return [env, single, sequence_length, first_seed, study], [report]
    fsdp = [
        Step("accelerate_fsdp", _launch(config, "fsdp", "fsdp"), 120),
        Step("fsdp_loads", [PY, "scripts/gpu_run.py", "check-load", str(run / "fsdp")], 60),
    ]
    # Seed 0 of the study first, stopping in time for the FSDP check (~40 s); the single-GPU
    # launcher and the figure, which passed on the H200 on 2026-11-27, after it.
    first_seed_then_checks = replace(first_seed, reserve_s=70)
    bf16 = Step("lstm_bf16", lambda: [*study_argv(), "--lstm_bf16_recurrence", "true"], 10_000)
    return [env, first_seed_then_checks, *fsdp, single, sequence_length, study, compiled, bf16], [report]
