"""tunekit's side: `run_pretraining` / `run_finetuning` exactly as a user calls them, timed from outside.

Steps are timed through torch's global optimizer post-step hook (see `measure`), so whatever the
loop does per step (masking, head, precision, compile, batching) is inside the window and nothing
in tunekit changes for the benchmark. Tokens come from the loop's own `tokens_seen` in
metrics.jsonl, logged every `warmup_steps` steps: the count at step W+N minus the count at step W.
"""

import json
from dataclasses import fields
from pathlib import Path

import torch

from tunekit.benchmark.corpus import BenchmarkFiles
from tunekit.benchmark.legs import SEED, WARMUP_RATIO, LegResult, optimizer_settings
from tunekit.benchmark.measure import StepWindow, optimizer_steps_timed, peak_memory
from tunekit.benchmark.presets import Case
from tunekit.config import DataArguments, ModelArguments, TrainArguments
from tunekit.training.tasks import run_finetuning, run_pretraining

LABEL_NAMES = ["negative", "positive"]


def supports_compile() -> bool:
    return any(f.name == "torch_compile" for f in fields(TrainArguments))


def model_arguments(case: Case, model_type: str, tokenizer_dir: Path) -> ModelArguments:
    encoder = case.encoder
    return ModelArguments(
        model_type=model_type,
        tokenizer_name_or_path=str(tokenizer_dir),
        vocab_size=encoder.vocab_size,
        hidden_size=encoder.hidden_size,
        num_hidden_layers=encoder.num_hidden_layers,
        num_attention_heads=encoder.num_attention_heads,
        intermediate_size=encoder.intermediate_size,
        max_position_embeddings=max(512, case.seq_len),
    )


def tunekit_arguments(
    case: Case, model_type: str, files: BenchmarkFiles, tokenizer_dir: Path, output_dir: Path, device: str
) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    pretraining = case.task == "pretraining"
    data_args = DataArguments(
        train_file=[str(files.pretraining_train if pretraining else files.finetuning_train)],
        validation_file=str(files.pretraining_validation if pretraining else files.finetuning_validation),
        label_names=None if pretraining else LABEL_NAMES,
        max_seq_length=case.seq_len,
        overwrite_cache=True,
    )
    extra = {"torch_compile": True} if case.compile else {}
    train_args = TrainArguments(
        output_dir=str(output_dir),
        overwrite_output_dir=True,
        seed=SEED,
        per_device_train_batch_size=case.batch_size,
        per_device_eval_batch_size=case.batch_size,
        max_steps=case.warmup_steps + case.steps,
        warmup_ratio=WARMUP_RATIO[case.task],
        # A log (one host-device sync) every W steps gives tokens_seen at step W.
        logging_steps=case.warmup_steps,
        eval_steps=0,
        save_steps=0,
        save_model=False,
        report_to="none",
        disable_tqdm=True,
        mixed_precision=case.precision,
        use_cpu=device == "cpu",
        **optimizer_settings(case.task),
        **extra,
    )
    return model_arguments(case, model_type, tokenizer_dir), data_args, train_args


def _tokens_in_window(metrics_path: Path, case: Case) -> int:
    seen = {}
    for line in metrics_path.read_text().splitlines():
        record = json.loads(line)
        if "tokens_seen" in record:
            seen[record["step"]] = record["tokens_seen"]
    first, last = case.warmup_steps, case.warmup_steps + case.steps
    if first in seen and last in seen:
        return seen[last] - seen[first]
    if case.task == "pretraining":  # packed blocks hold no padding
        return case.steps * case.batch_size * case.seq_len
    raise RuntimeError(f"{metrics_path} has no tokens_seen at steps {first} and {last}")


def run_tunekit_leg(
    case: Case, model_type: str, files: BenchmarkFiles, tokenizer_dir: Path, work_dir: Path, device: str
) -> LegResult:
    output_dir = work_dir / f"tunekit_{case.task}"
    configs = tunekit_arguments(case, model_type, files, tokenizer_dir, output_dir, device)
    window = StepWindow(case.warmup_steps, case.steps, torch.device(device))
    run = run_pretraining if case.task == "pretraining" else run_finetuning
    with peak_memory(torch.device(device)) as memory, optimizer_steps_timed(window) as optimizer:
        run(*configs)
    return LegResult(
        system="tunekit",
        seconds=window.seconds,
        # Every fine-tuning batch is full (the training set is a multiple of the batch) and the
        # window is one whole epoch.
        examples=case.steps * case.batch_size,
        tokens=_tokens_in_window(output_dir / "metrics.jsonl", case),
        peak_memory_mib=memory["mib"],
        optimizer=optimizer,
        cpu_seconds=window.cpu_seconds,
    )
