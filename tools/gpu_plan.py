"""What the GPU run does, in order of value, and the same plan at smoke size for CPU.

Phase 1 (one device call, ~8 min): (a) environment, (b) the eager benchmark against the Trainer,
(c) the IMDb study: pretraining sized from (b)'s measured tokens/s, then every arm and label budget
at seed 0, then seeds 1 and 2, until the deadline. Phase 2 (a second call at once, on the machine
phase 1 left warm, in the same run directory; or on a fresh one that restores phase 1's archive):
the rest of seed 0, stopping in time for the FSDP launcher check (FSDP on one process, the saved
model loads), then the single-GPU launcher, (d) the sequence-length figure, seeds 1 and 2, the
compiled benchmark, (e) the LSTM bf16-recurrence arms.
"""

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from tools.gpu_session import Step

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
