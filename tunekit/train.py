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
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

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
from tunekit.fsdp import configure_fsdp_wrapping
from tunekit.last_layer import has_query_rows, install_first_token_last_layer
from tunekit.metrics import language_model_metrics
from tunekit.mlm_head import install_masked_only_head
from tunekit.optim import build_optimizer, configure_matmul, resolve_mixed_precision
from tunekit.preemption import RunGuard
from tunekit.step import LossWindow, model_forward, optimizer_step, summed_loss
from tunekit.throughput import MetricsLog, ThroughputMeter, postfix

__all__ = ["LoopResult", "evaluate_model", "make_accelerator", "plain_model", "summed_loss", "train_loop"]

logger = logging.getLogger(__name__)

MetricFn = Callable[[np.ndarray, np.ndarray], dict[str, float]]


@dataclass
class LoopResult:
    model: torch.nn.Module  # as prepared by accelerate; `accelerator.unwrap_model` gives the plain one
    progress: Progress
    final_metrics: dict[str, float]
    throughput: dict[str, Any]  # tokens/s, MFU, peak memory over the run's optimizer steps


def make_accelerator(args: TrainArguments) -> Accelerator:
    tracker = args.report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is not None
    # Every run (a demo stage, a study cell) brings its own precision; accelerate keeps one global
    # state per process, so it is reset here. The process group (PartialState) is kept.
    AcceleratorState._reset_state()
    accelerator = Accelerator(
        cpu=args.use_cpu,
        mixed_precision=resolve_mixed_precision(args.mixed_precision, args.use_cpu),
        # accelerate compiles the model in `prepare` (after wrapping it for DDP); see optim.py for
        # what that does with fine-tuning's variable shapes.
        dynamo_backend="inductor" if args.torch_compile else None,
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
    configure_matmul(accelerator.device)
    return accelerator


def plain_model(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """The model without DDP or compile wrappers: what is saved, and whose state is read."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


def evaluate_model(
    model: torch.nn.Module,
    dataloader: DataLoader,
    accelerator: Accelerator,
    metric_fn: MetricFn | None,
    prefix: str = "eval",
    masked_only: bool = False,
) -> dict[str, float]:
    """Exact distributed evaluation: per-example sums go through `gather_for_metrics`, which drops
    the duplicates that even batches add on the last step."""
    model.eval()
    sums, counts, predictions, references = [], [], [], []
    with torch.no_grad():
        for batch in dataloader:
            loss_sum, count, logits = model_forward(model, batch, accelerator, masked_only)
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
    masked_only = install_masked_only_head(model)
    # The last layer runs only where the head reads it: the targets, or a classifier's position 0.
    first_token = install_first_token_last_layer(model)
    last_layer_rows = (
        "first_token" if first_token else "targets" if masked_only and has_query_rows(model) else None
    )
    # On the device before the optimizer is built, so it can pick the fused CUDA kernel.
    optimizer = build_optimizer(model.to(accelerator.device), args)
    configure_fsdp_wrapping(accelerator, model)
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    # Drop accelerate's per-forward autocast + fp32-output wrapper: `model_forward` enters autocast
    # itself, and the wrapper would upcast the full logits to fp32.
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)
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

    log = MetricsLog(accelerator, args.output_dir)
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
    meter = ThroughputMeter(accelerator.device, accelerator.num_processes, masked_only, last_layer_rows)
    window = LossWindow(accelerator.device)
    fine_tuning = metric_fn is not None
    final_metrics: dict[str, float] = {}
    guard = RunGuard(accelerator, args.output_dir)  # SIGTERM/SIGINT and non-finite loss
    model.train()

    def flush(keep_loss: bool = False) -> float:
        """Read the window's device sums and stop the clock: the step loop's only host-device sync
        (here, at logging steps and checkpoints; evaluation and checkpointing wait on the device
        anyway)."""
        nonlocal window
        # float64 holds token counts exactly far beyond what one logging window sees.
        sums = torch.stack([window.loss.double(), window.tokens.double(), window.targets.double()])
        loss, tokens, targets = accelerator.reduce(sums, "sum").tolist()
        meter.pause()
        progress.tokens_seen += int(tokens)
        processes = accelerator.num_processes
        meter.count(int(tokens), window.examples * processes, window.positions * processes, int(targets))
        mean_loss = loss / max(1, window.steps)
        window = window.counted() if keep_loss else LossWindow(accelerator.device)
        return mean_loss

    def save() -> Path:
        guard.check_finite()  # never checkpoint non-finite weights
        flush(keep_loss=True)  # the loss window runs on to the next logging step
        progress.train_runtime = time.perf_counter() - started
        path = save_checkpoint(accelerator, args.output_dir, progress, args.save_total_limit, best_state)
        meter.resume()
        return path

    def run_eval() -> dict[str, float]:
        nonlocal best_state
        if eval_dataloader is None:
            return {}
        metrics = evaluate_model(model, eval_dataloader, accelerator, metric_fn, masked_only=masked_only)
        log.write({"epoch": progress.epoch, **metrics}, progress.global_step)
        value = metrics.get(f"eval_{args.metric_for_best_model}")
        if value is not None and _is_better(value, progress.best_metric, args.metric_for_best_model):
            progress.best_metric, progress.best_step = value, progress.global_step
            if args.load_best_model_at_end:
                state = plain_model(accelerator, model).state_dict()
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        return metrics

    meter.resume()
    while progress.global_step < total_steps:
        train_dataloader.set_epoch(progress.epoch)
        if hasattr(train_dataloader.collate_fn, "set_epoch"):
            train_dataloader.collate_fn.set_epoch(progress.epoch)
        epoch_loader = train_dataloader
        if progress.batches_in_epoch:
            epoch_loader = accelerator.skip_first_batches(train_dataloader, progress.batches_in_epoch)
        batches = iter(epoch_loader)
        while progress.global_step < total_steps:
            micro_batches = list(islice(batches, accumulation))
            if not micro_batches:
                break
            # Dropout draws from torch's global RNG, which dataloader iterators and evaluation also
            # consume; re-seeding per step makes the stream a function of the step alone, so a
            # resumed run draws exactly what the uninterrupted one did.
            torch.manual_seed(args.seed * 1_000_003 + progress.global_step)
            work = optimizer_step(model, optimizer, scheduler, micro_batches, accelerator, args, masked_only)
            # Per-step checks (e.g. a non-finite loss, a stop signal) belong here, one per optimizer step;
            # anything that reads `work` on the host makes it wait for the device.
            window.add(work)
            progress.global_step += 1
            guard.watch_loss(work.loss, progress.global_step)  # on the device: no wait
            progress.batches_in_epoch += len(micro_batches)
            bar.update(1)

            if progress.global_step % args.logging_steps == 0 or progress.global_step == total_steps:
                guard.check_finite()
                record = {"epoch": progress.epoch, "loss": flush()}
                record |= {"learning_rate": scheduler.get_last_lr()[0], "tokens_seen": progress.tokens_seen}
                record |= meter.report(plain_model(accelerator, model), window=True, fine_tuning=fine_tuning)
                log.write(record, progress.global_step)
                bar.set_postfix(postfix(record))
                meter.resume()
            if args.eval_steps and progress.global_step % args.eval_steps == 0:
                meter.pause(sync=True)
                final_metrics = run_eval()
                meter.resume()
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
    flush()
    run_throughput = meter.report(plain_model(accelerator, model), window=False, fine_tuning=fine_tuning)
    if not (args.eval_steps and progress.global_step % args.eval_steps == 0):
        final_metrics = run_eval()
    if args.load_best_model_at_end and best_state is not None:
        plain_model(accelerator, model).load_state_dict(best_state)
        logger.info(
            "restored the best weights (step %s, %s=%s)",
            progress.best_step,
            args.metric_for_best_model,
            progress.best_metric,
        )
    progress.train_runtime = time.perf_counter() - started
    bar.close()
    return LoopResult(model=model, progress=progress, final_metrics=final_metrics, throughput=run_throughput)
