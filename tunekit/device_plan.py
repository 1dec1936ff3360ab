"""What the GPU run does, in order of value, and the same plan at smoke size for CPU (issue 29).

The two numbers the mission most needs come first, one per call.

Call 1 (<= 9 min), tunekit's GPU efficiency: the environment, then the pretraining benchmark at
BERT-base size and at the IMDb recipe's size, each leg in a process of its own that writes its own
table (a failing leg costs only itself), in the order tunekit compiled, Trainer eager, tunekit
eager, Trainer compiled; the first leg also writes a kernel-only profile of its warm-up. Whatever
finished is then joined into one table (`benchmark/benchmark.json`). No study.

Call 2, the transformer's IMDb accuracy: the study's transformer arms only (the LSTM cells of
2026-11-28 stand): the pretraining, sized from call 1's tunekit eager tokens/s on the IMDb encoder,
then pretrained and scratch at every label budget with seed 0, then seeds 1 and 2, each cell tested
on the full test set; then, if time is left, the FSDP launcher check (FSDP on one process, and the
saved model loads with plain transformers).
"""

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from tunekit.device_run import Step

PY = sys.executable
# The study's transformer arms; the LSTM cells of the 2026-11-28 run are not repeated.
TRANSFORMER_ARMS = ("transformer_pretrained", "transformer_scratch")
BENCHMARK_TABLE = "benchmark"  # run_dir/benchmark/benchmark.json: every leg that finished, joined
# Call 1's legs in order of value: tunekit compiled (the MFU target), then the Trainer eager (the
# ratio's reference), tunekit eager, the Trainer compiled. (system, compiled), per encoder size.
LEG_ORDER = (("tunekit", True), ("trainer", False), ("tunekit", False), ("trainer", True))
# Seconds each leg may take, process start, data and compilation included.
LEG_BUDGET_S = {True: 170, False: 100}


@dataclass
class PlanConfig:
    run_dir: Path  # everything a call produces; packed into the archive
    data_dir: Path  # the IMDb files: call 1 the benchmark's slice (train, unsup), call 2 all three
    smoke: bool
    phase: int
    pretrain_seconds: float = 60.0  # call 2's pretraining, at call 1's measured tokens/s

    @property
    def study_dir(self) -> Path:
        return self.run_dir / "study"


def _files(config: PlanConfig, *names: str) -> list[str]:
    return [str(next(config.data_dir.glob(f"{name}.jsonl*"))) for name in names]


def _study_argv(config: PlanConfig, pretrain_steps: int) -> list[str]:
    train, test = _files(config, "train", "test")
    # unsup + train, as the recipes pretrain; a copy without unsup pretrains on the train text alone.
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
        *["--arms", *TRANSFORMER_ARMS],
        *extra,
        f"--stage_overrides={stage}",
        f"--pretrain_overrides=--train_file {' '.join(pretrain_files)} --train_split train "
        f"--test_file {test} --max_steps {pretrain_steps} --save_steps 0 --eval_steps 0",
        f"--finetune_overrides=--train_file {train} --test_file {test} {finetune}",
    ]


def pretrain_steps(config: PlanConfig, tokens_per_step: int, default: int) -> int:
    """Pretraining steps that fill `pretrain_seconds` at the tokens/s call 1 measured for the IMDb
    encoder (bf16, tunekit eager, as the study runs); `default` when no such leg finished."""
    table = config.run_dir / "benchmark" / f"{BENCHMARK_TABLE}.json"
    if not table.is_file():
        return default
    rows = json.loads(table.read_text()).get("rows", [])
    rates = [
        row["tokens_per_second"]
        for row in rows
        if row.get("system") == "tunekit"
        and row.get("task") == "pretraining"
        and not row.get("compile")
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


def leg_name(encoder: str, system: str, compiled: bool) -> str:
    return f"bench_{encoder}_{system}_{'compiled' if compiled else 'eager'}"


def benchmark_legs(config: PlanConfig) -> list[Step]:
    """Call 1's benchmark: one process per (encoder, system, compile) leg, each its own table."""
    run = config.run_dir
    preset, encoders = ("smoke_legs", ("tiny",)) if config.smoke else ("gpu", ("bert-base", "imdb-recipe"))
    steps = []
    for encoder in encoders:
        for system, compiled in LEG_ORDER:
            name = leg_name(encoder, system, compiled)
            argv = [
                *[PY, "scripts/benchmark.py", "--preset", preset, "--tasks", "pretraining"],
                *["--data_dir", str(config.data_dir.parent)],  # the presets read <data_dir>/imdb/
                # The IMDb recipes' architecture (ModernBERT), which the study trains.
                *["--model_type", "modernbert", "--encoders", encoder, "--systems", system],
                *["--compile", "on" if compiled else "off"],
                *["--output_dir", str(run / "benchmark" / "legs"), "--name", name],
            ]
            if not steps:  # the first leg: where tunekit's compiled step spends its device time
                argv += ["--profile_dir", str(run / "benchmark" / "profiles")]
            steps.append(Step(name, argv, LEG_BUDGET_S[compiled]))
    return steps


def plan_steps(config: PlanConfig) -> tuple[list[Step], list[Step]]:
    """(steps, finally_steps) for this call."""
    run = config.run_dir
    env = Step("env", [PY, "scripts/gpu_run.py", "env", *(["--smoke"] if config.smoke else [])], 60)
    if config.phase == 1:
        legs = benchmark_legs(config)
        tables = [str(run / "benchmark" / "legs" / f"{leg.name}.json") for leg in legs]
        merge = Step(
            "benchmark_table",
            [PY, "scripts/gpu_run.py", "merge-benchmark", str(run / "benchmark"), BENCHMARK_TABLE, *tables],
            30,
        )
        return [env, *legs], [merge]

    def study_argv() -> list[str]:
        if config.smoke:
            return _study_argv(config, 10)
        return _study_argv(config, pretrain_steps(config, tokens_per_step=128 * 256, default=6000))

    # Seed 0 of both arms and every label budget first: one complete row of the table is worth more
    # than three seeds of the small budgets. The study reuses finished cells, so the second step
    # only adds seeds 1 and 2.
    first_seed = Step("study_seed0", lambda: [*study_argv(), "--seeds", "0"], 10_000)
    study = Step("study", study_argv, 10_000)
    report = Step("study_report", lambda: [*study_argv(), "--report_only", "true"], 60)
    # One process on the one GPU (fsdp.yaml says 2, for a two-GPU machine); on CPU, the CPU launcher.
    fsdp = [
        Step("accelerate_fsdp", _launch(config, "cpu" if config.smoke else "fsdp", "fsdp"), 120),
        Step("fsdp_loads", [PY, "scripts/gpu_run.py", "check-load", str(run / "fsdp")], 60),
    ]
    return [env, first_seed, study, *fsdp], [report]
