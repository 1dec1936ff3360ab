"""The one training loop: MLM pretraining, transformer fine-tuning and the LSTM all run here.

Only this module talks to `Accelerator`. A model plugs in through one contract: a batch of
`input_ids` (+ `attention_mask`) and `labels` where -100 marks positions without a target;
the model returns `logits` and the loop computes the loss. Owning the loss is what makes
gradient accumulation exact: the loss is summed over target items and divided by the items in
the whole optimizer step, across all micro-batches and processes, so 4 micro-batches of 2 give
the same gradient as one batch of 8 even when micro-batches hold different numbers of masked
tokens.
"""

import importlib.util
import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from tunekit.checkpoint import (
    Progress,
    load_best_state,
    refuse_unsafe_pickles,
    resolve_checkpoint,
    save_checkpoint,
)
from tunekit.config import TrainArguments
from tunekit.metrics import language_model_metrics
from tunekit.preemption import RunGuard

logger = logging.getLogger(__name__)

MetricFn = Callable[[np.ndarray, np.ndarray], dict[str, float]]


@dataclass
class LoopResult:
    model: torch.nn.Module  # as prepared by accelerate; `accelerator.unwrap_model` gives the plain one
    progress: Progress
    final_metrics: dict[str, float]


def make_accelerator(args: TrainArguments) -> Accelerator:
    tracker = args.report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is not None
    # Every run (a demo stage, a study cell) brings its own precision; accelerate keeps one global
    # state per process, so it is reset here. The process group (PartialState) is kept.
    AcceleratorState._reset_state()
    return Accelerator(
        cpu=args.use_cpu,
        mixed_precision=args.mixed_precision,
        log_with="tensorboard" if tracker else None,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=f"{args.output_dir}/runs"
        ),
        # A seedable sampler makes the shuffle order a function of (seed, epoch), identical on every
        # process and after a resume.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        # The loop steps the scheduler itself, once per optimizer step, whatever the process count.
        step_scheduler_with_optimizer=False,
    )


def build_optimizer(model: torch.nn.Module, args: TrainArguments) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases, norms and other 1-d parameters (as in BERT)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon
    )


def summed_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example summed cross-entropy over target positions, and per-example target counts."""
    flat = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100, reduction="none"
    )
    batch = labels.shape[0]
    return flat.view(batch, -1).sum(1), (labels != -100).view(batch, -1).sum(1)


def _forward(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    logits = model(**inputs).logits
    return (*summed_loss(logits, batch["labels"]), logits)


def evaluate_model(
    model: torch.nn.Module,
    dataloader: DataLoader,
    accelerator: Accelerator,
    metric_fn: MetricFn | None,
    prefix: str = "eval",
) -> dict[str, float]:
    """Exact distributed evaluation: per-example sums go through `gather_for_metrics`, which drops
    the duplicates that even batches add on the last step."""
    model.eval()
    sums, counts, predictions, references = [], [], [], []
    with torch.no_grad():
        for batch in dataloader:
            loss_sum, count, logits = _forward(model, batch)
            loss_sum, count = accelerator.gather_for_metrics((loss_sum, count))
            sums.append(loss_sum.cpu())
            counts.append(count.cpu())
            if metric_fn is not None:
                predicted, labels = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
                predictions.append(predicted.cpu().numpy())
                references.append(labels.cpu().numpy())
    model.train()
    mean_loss = float(torch.cat(sums).sum() / torch.cat(counts).sum().clamp(min=1))
    if metric_fn is None:
        metrics = language_model_metrics(mean_loss)
    else:
        metrics = {"loss": mean_loss, **metric_fn(np.concatenate(predictions), np.concatenate(references))}
    return {f"{prefix}_{key}": value for key, value in metrics.items()}


def _is_better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best


class _MetricsLog:
    """metrics.jsonl on the main process, plus accelerate's trackers."""

    def __init__(self, accelerator: Accelerator, output_dir: str) -> None:
        self.accelerator = accelerator
        self.path = Path(output_dir) / "metrics.jsonl"

    def write(self, record: dict, step: int) -> None:
        self.accelerator.log({k: v for k, v in record.items() if isinstance(v, int | float)}, step=step)
        if self.accelerator.is_main_process:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"step": step, **record}) + "\n")


def train_loop(
    model: torch.nn.Module,
    train_dataloader: DataLoader,
    eval_dataloader: DataLoader | None,
    args: TrainArguments,
    accelerator: Accelerator,
    metric_fn: MetricFn | None = None,
) -> LoopResult:
    """Train, evaluating every `eval_steps` and at the end; return progress and final eval metrics.

    Pass dataloaders that are not yet prepared; the loop prepares them with the model.
    """
    optimizer = build_optimizer(model, args)
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if eval_dataloader is not None:
        eval_dataloader = accelerator.prepare(eval_dataloader)
    accumulation = args.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(len(train_dataloader) / accumulation))
    total_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=int(args.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    accelerator.register_for_checkpointing(scheduler)

    progress = Progress()
    best_state: dict[str, torch.Tensor] | None = None
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
        refuse_unsafe_pickles(checkpoint)
        accelerator.load_state(str(checkpoint))
        progress = Progress.load(checkpoint)
        best_state = load_best_state(checkpoint)
        logger.info("resumed from %s at step %d", checkpoint, progress.global_step)

    log = _MetricsLog(accelerator, args.output_dir)
    if accelerator.is_main_process:
        accelerator.init_trackers("tunekit")
    bar = tqdm(
        total=total_steps,
        initial=progress.global_step,
        desc="training",
        dynamic_ncols=True,
        disable=args.disable_tqdm or not accelerator.is_local_main_process,
    )
    started = time.perf_counter() - progress.train_runtime
    window_loss, window_steps = 0.0, 0
    # Counted on the device and read only when logging: an int() per micro-batch would make the
    # host wait for the GPU at every step.
    local_tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
    final_metrics: dict[str, float] = {}
    guard = RunGuard(accelerator, args.output_dir)  # SIGTERM/SIGINT and non-finite loss
    model.train()

    def flush_tokens() -> None:
        nonlocal local_tokens
        counted = accelerator.reduce(local_tokens.clone(), "sum")
        progress.tokens_seen += int(counted)
        local_tokens = torch.zeros_like(local_tokens)

    def save() -> Path:
        guard.check_finite()  # never checkpoint non-finite weights
        flush_tokens()
        progress.train_runtime = time.perf_counter() - started
        return save_checkpoint(accelerator, args.output_dir, progress, args.save_total_limit, best_state)

    def run_eval() -> dict[str, float]:
        nonlocal best_state
        if eval_dataloader is None:
            return {}
        metrics = evaluate_model(model, eval_dataloader, accelerator, metric_fn)
        log.write({"epoch": progress.epoch, **metrics}, progress.global_step)
        value = metrics.get(f"eval_{args.metric_for_best_model}")
        if value is not None and _is_better(value, progress.best_metric, args.metric_for_best_model):
            progress.best_metric, progress.best_step = value, progress.global_step
            if args.load_best_model_at_end:
                state = accelerator.unwrap_model(model).state_dict()
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        return metrics

    while progress.global_step < total_steps:
        train_dataloader.set_epoch(progress.epoch)
        if hasattr(train_dataloader.collate_fn, "set_epoch"):
            train_dataloader.collate_fn.set_epoch(progress.epoch)
        epoch_loader = train_dataloader
        if progress.batches_in_epoch:
            epoch_loader = accelerator.skip_first_batches(train_dataloader, progress.batches_in_epoch)
        batches = iter(epoch_loader)
        while progress.global_step < total_steps:
            window = list(islice(batches, accumulation))
            if not window:
                break
            # Dropout draws from torch's global RNG, which dataloader iterators and evaluation also
            # consume; re-seeding per step makes the stream a function of the step alone, so a
            # resumed run draws exactly what the uninterrupted one did.
            torch.manual_seed(args.seed * 1_000_003 + progress.global_step)
            # Items (masked tokens, or examples) in the whole optimizer step, over all processes.
            items = accelerator.reduce(sum((b["labels"] != -100).sum() for b in window), "sum").clamp(min=1)
            step_loss = torch.zeros((), device=accelerator.device)
            for index, batch in enumerate(window):
                last = index == len(window) - 1
                with nullcontext() if last else accelerator.no_sync(model):
                    loss_sum, _, _ = _forward(model, batch)
                    # DDP averages gradients over processes; multiplying back makes the result the
                    # global per-item mean.
                    accelerator.backward(loss_sum.sum() * accelerator.num_processes / items)
                step_loss += loss_sum.sum().detach()
                local_tokens += (
                    batch["attention_mask"].sum() if "attention_mask" in batch else batch["input_ids"].numel()
                )
            if args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.global_step += 1
            guard.watch_loss(step_loss, progress.global_step)
            progress.batches_in_epoch += len(window)
            window_loss += float(accelerator.reduce(step_loss, "sum") / items)
            window_steps += 1
            bar.update(1)

            if progress.global_step % args.logging_steps == 0 or progress.global_step == total_steps:
                guard.check_finite()
                flush_tokens()
                record = {
                    "epoch": progress.epoch,
                    "loss": window_loss / window_steps,
                    "learning_rate": scheduler.get_last_lr()[0],
                    "tokens_seen": progress.tokens_seen,
                }
                log.write(record, progress.global_step)
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                window_loss, window_steps = 0.0, 0
            if args.eval_steps and progress.global_step % args.eval_steps == 0:
                final_metrics = run_eval()
            saved = args.save_steps and progress.global_step % args.save_steps == 0
            if saved:
                save()
            if guard.stop_requested():  # SIGTERM/SIGINT on any process: checkpoint and exit
                if not saved:
                    save()
                raise guard.preempted(progress.global_step)
        if progress.global_step < total_steps:  # the epoch ran out of batches
            progress.epoch += 1
            progress.batches_in_epoch = 0

    guard.close()
    flush_tokens()
    if not (args.eval_steps and progress.global_step % args.eval_steps == 0):
        final_metrics = run_eval()
    if args.load_best_model_at_end and best_state is not None:
        accelerator.unwrap_model(model).load_state_dict(best_state)
        logger.info(
            "restored the best weights (step %s, %s=%s)",
            progress.best_step,
            args.metric_for_best_model,
            progress.best_metric,
        )
    progress.train_runtime = time.perf_counter() - started
    bar.close()
    return LoopResult(model=model, progress=progress, final_metrics=final_metrics)
