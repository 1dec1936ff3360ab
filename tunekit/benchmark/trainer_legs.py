"""The transformers `Trainer` side, set up as its example scripts set it up.

- Pretraining follows run_mlm.py: documents tokenized with special tokens, concatenated and cut
  into blocks by `group_texts`, DataCollatorForLanguageModeling(mlm_probability=0.15), an
  AutoModelForMaskedLM from the same config.
- Fine-tuning follows run_glue.py: either `pad_to_max_length` (every review padded to the
  maximum length, default_data_collator) or dynamic padding (DataCollatorWithPadding) with
  length-grouped sampling.

TrainingArguments keep their defaults except the shared settings: batch, steps, precision,
compile, the AdamW settings and implementation of tunekit's leg, no reporting, no saving.
Steps are timed by a TrainerCallback's `on_step_end`; tokens and examples by counting what the
collator returns, batch by batch.
"""

from collections.abc import Callable
from dataclasses import fields
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from accelerate.state import AcceleratorState
from datasets import Dataset, load_dataset
from transformers import (
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

from tunekit.benchmark.legs import MLM_PROBABILITY, SEED, WARMUP_RATIO, LegResult, optimizer_settings
from tunekit.benchmark.measure import BatchCounter, StepWindow, peak_memory
from tunekit.benchmark.presets import Case
from tunekit.benchmark.profiling import LegProfiles

PAD_TO_MAX = "Trainer (pad to max)"
GROUPED = "Trainer (group_by_length)"
TRAINER = "Trainer"


class WindowCallback(TrainerCallback):
    def __init__(self, window: StepWindow) -> None:
        self.window = window

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        self.window.step_ended()


def trainer_optim(tunekit_optimizer: dict[str, Any]) -> str:
    """The Trainer's optimizer name for the AdamW implementation tunekit's leg used.

    On torch >= 2.8 the Trainer would default to `adamw_torch_fused`; matching tunekit keeps the
    comparison about the loops rather than the optimizer kernel.
    """
    return "adamw_torch_fused" if tunekit_optimizer.get("fused") else "adamw_torch"


def training_arguments(
    case: Case, output_dir: Path, device: str, optim: str, grouped: bool
) -> TrainingArguments:
    sampling = {}
    if grouped:
        names = {f.name for f in fields(TrainingArguments)}
        sampling = (
            {"train_sampling_strategy": "group_by_length"}
            if "train_sampling_strategy" in names
            else {"group_by_length": True}
        )
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=case.batch_size,
        max_steps=case.warmup_steps + case.steps,
        warmup_steps=WARMUP_RATIO[case.task],  # a float in [0, 1) is a ratio of the steps
        bf16=case.precision == "bf16",
        fp16=case.precision == "fp16",
        torch_compile=case.compile,
        torch_compile_backend=case.compile_backend if case.compile else None,
        optim=optim,
        use_cpu=device == "cpu",
        dataloader_num_workers=case.dataloader_workers,
        seed=SEED,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        **optimizer_settings(case.task),
        **sampling,
    )


def group_texts(examples: dict[str, list], block_size: int) -> dict[str, list]:
    """run_mlm.py's group_texts: concatenate every column and cut it into block_size chunks."""
    concatenated = {key: list(chain(*examples[key])) for key in examples}
    total = len(concatenated["input_ids"]) // block_size * block_size
    return {
        key: [values[i : i + block_size] for i in range(0, total, block_size)]
        for key, values in concatenated.items()
    }


def mlm_blocks(train_file: Path, tokenizer: PreTrainedTokenizerBase, block_size: int) -> Dataset:
    texts = load_dataset("json", data_files=str(train_file), split="train")
    tokenized = texts.map(
        lambda batch: tokenizer(batch["text"], return_special_tokens_mask=True),
        batched=True,
        remove_columns=texts.column_names,
    )
    return tokenized.map(group_texts, batched=True, fn_kwargs={"block_size": block_size})


def classification_set(
    train_file: Path, tokenizer: PreTrainedTokenizerBase, max_length: int, pad_to_max: bool
) -> Dataset:
    reviews = load_dataset("json", data_files=str(train_file), split="train")
    padding = "max_length" if pad_to_max else False
    return reviews.map(
        lambda batch: tokenizer(batch["text"], padding=padding, max_length=max_length, truncation=True),
        batched=True,
        remove_columns=["text"],
    )


def _optimizer_settings(trainer: Trainer) -> dict[str, Any]:
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # unwrap accelerate's
    defaults = optimizer.defaults
    return {
        "name": type(optimizer).__name__,
        "fused": bool(defaults.get("fused")),
        "foreach": defaults.get("foreach"),
    }


def _train(
    system: str,
    case: Case,
    build: Callable[[], tuple[torch.nn.Module, Dataset, Any]],
    tokenizer: PreTrainedTokenizerBase,
    work_dir: Path,
    device: str,
    optim: str,
    profiles: LegProfiles,
) -> LegResult:
    """`build` makes (model, dataset, collator) inside the memory window, as tunekit's leg does."""
    AcceleratorState._reset_state()  # the previous leg's precision must not leak into this one
    window = StepWindow(case.warmup_steps, case.steps, torch.device(device))
    args = training_arguments(case, work_dir / "trainer", device, optim, grouped=system == GROUPED)
    with profiles(system), peak_memory(torch.device(device)) as memory:
        torch.manual_seed(SEED)
        model, dataset, collator = build()
        counter = BatchCounter(collator)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=counter,
            processing_class=tokenizer,
            callbacks=[WindowCallback(window)],
        )
        trainer.train()
    examples, tokens = counter.window(case.warmup_steps, case.steps)
    optimizer = _optimizer_settings(trainer)
    return LegResult(system, window.seconds, examples, tokens, memory["mib"], optimizer, window.cpu_seconds)


def run_trainer_pretraining(
    case: Case,
    config: PretrainedConfig,
    tokenizer: PreTrainedTokenizerBase,
    train_file: Path,
    work_dir: Path,
    device: str,
    optim: str,
    profiles: LegProfiles,
) -> list[LegResult]:
    def build() -> tuple[torch.nn.Module, Dataset, Any]:
        blocks = mlm_blocks(train_file, tokenizer, case.seq_len)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=MLM_PROBABILITY)
        return AutoModelForMaskedLM.from_config(config), blocks, collator

    return [_train(TRAINER, case, build, tokenizer, work_dir, device, optim, profiles)]


def run_trainer_finetuning(
    case: Case,
    config: PretrainedConfig,
    tokenizer: PreTrainedTokenizerBase,
    train_file: Path,
    work_dir: Path,
    device: str,
    optim: str,
    profiles: LegProfiles,
) -> list[LegResult]:
    def builder(pad_to_max: bool) -> Callable[[], tuple[torch.nn.Module, Dataset, Any]]:
        def build() -> tuple[torch.nn.Module, Dataset, Any]:
            dataset = classification_set(train_file, tokenizer, case.seq_len, pad_to_max)
            multiple = 8 if case.precision == "fp16" else None  # as run_glue.py does
            collator = (
                default_data_collator
                if pad_to_max
                else DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)
            )
            return AutoModelForSequenceClassification.from_config(config), dataset, collator

        return build

    return [
        _train(system, case, builder(system == PAD_TO_MAX), tokenizer, work_dir, device, optim, profiles)
        for system in (PAD_TO_MAX, GROUPED)
    ]
