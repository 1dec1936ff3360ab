"""The one training loop: MLM pretraining, transformer fine-tuning and the LSTM all run here.

Only the loop (this module, with `tunekit.training.accelerator` and `tunekit.training.evaluation`) talks to
`Accelerator`. A model plugs in through one contract: a batch of `input_ids` (+ `attention_mask`)
and `labels` where -100 marks positions without a target; the model returns `logits` and the loop
computes the loss. Owning the loss is what makes gradient accumulation exact: the loss is summed
over target items and divided by the items in the whole optimizer step, across all micro-batches
and processes, so 4 micro-batches of 2 give the same gradient as one batch of 8 even when
micro-batches hold different numbers of masked tokens.

The step loop waits for the device only in `TrainingRun.flush` (logging steps, checkpoints) and
in evaluation: a step's loss, token counts and finiteness check stay on the device until then.
"""

import contextlib
import logging
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from tunekit.config import TrainArguments
from tunekit.config.trackers import tracker_config
from tunekit.errors import TunekitError
from tunekit.training.accelerator import PreparedTraining, plain_model
from tunekit.training.checkpoint import (
    Progress,
    load_best_state,
    refuse_unsafe_pickles,
    resolve_checkpoint,
    save_checkpoint,
)
from tunekit.training.compile_stats import CompileWatch
from tunekit.training.evaluation import MetricFn, evaluate_model, is_better
from tunekit.training.host_syncs import HostSyncWatch
from tunekit.training.preemption import RunGuard
from tunekit.training.run_lock import keep_output_dir
from tunekit.training.schedule_extension import rebuild_schedule_at
from tunekit.training.step import LossWindow, optimizer_step
from tunekit.training.summary import log_evaluation
from tunekit.training.throughput import MetricsLog, ThroughputMeter, postfix

__all__ = ["LoopResult", "train_loop"]

logger = logging.getLogger(__name__)


@dataclass
class LoopResult:
    model: torch.nn.Module  # as prepared by accelerate; `accelerator.unwrap_model` gives the plain one
    progress: Progress
    final_metrics: dict[str, float]
    throughput: dict[str, Any]  # tokens/s, MFU, peak memory over the run's optimizer steps
    train_loss: float | None = None  # the mean loss of the last logging window


def train_loop(
    model: torch.nn.Module,
    train_dataloader: DataLoader,
    eval_dataloader: DataLoader | None,
    args: TrainArguments,
    accelerator: Accelerator,
    metric_fn: MetricFn | None = None,
    recipe: dict[str, Any] | None = None,
) -> LoopResult:
    """Train, evaluating every `eval_steps` and at the end; return progress and final eval metrics.

    Pass dataloaders that are not yet prepared; the loop prepares them with the model. `recipe` (the
    resolved recipe) goes to the trackers as the run's config.
    """
    prepared = PreparedTraining.build(model, train_dataloader, eval_dataloader, args, accelerator)
    return TrainingRun(prepared, args, accelerator, metric_fn, recipe).run()


class TrainingRun:
    """One run's state (progress, the loss window, the throughput meter, the best weights) and the
    loop's steps as methods."""

    def __init__(
        self,
        prepared: PreparedTraining,
        args: TrainArguments,
        accelerator: Accelerator,
        metric_fn: MetricFn | None,
        recipe: dict[str, Any] | None = None,
    ) -> None:
        self.prepared = prepared
        self.args, self.accelerator, self.metric_fn = args, accelerator, metric_fn
        self.recipe = recipe  # saved in every checkpoint: a resume compares it before writing anything
        self.fine_tuning = metric_fn is not None  # examples/s too, in the throughput records
        self.progress = Progress()
        self.best_state: dict[str, torch.Tensor] | None = None
        if args.resume_from_checkpoint:
            self._resume()
        # Everything that can refuse the run has passed: from here on what it writes stays, even
        # if it fails (a refusal before this point leaves the output dir as it found it).
        keep_output_dir(args.output_dir)
        self.progress.total_steps = self.total_steps
        self.log = MetricsLog(accelerator, args.output_dir)
        if accelerator.is_main_process:
            accelerator.init_trackers(
                "tunekit",
                config=tracker_config(recipe) if recipe else None,
                init_kwargs=self._forget_steps_past_the_checkpoint(),
            )
        self.bar = tqdm(
            total=self.total_steps,
            initial=self.progress.global_step,
            desc="training",
            dynamic_ncols=True,
            disable=args.disable_tqdm or not accelerator.is_main_process,
        )
        self.started = time.perf_counter() - self.progress.train_runtime
        self.meter = ThroughputMeter(
            accelerator.device, accelerator.num_processes, prepared.masked_only, prepared.last_layer_rows
        )
        self.window = LossWindow(accelerator.device)
        self.final_metrics: dict[str, float] = {}
        self.last_train_loss: float | None = None
        self.guard = RunGuard(accelerator, args.output_dir)  # SIGTERM/SIGINT and non-finite loss
        self.syncs = HostSyncWatch(args.debug_host_syncs, accelerator.device)
        self.compiles = CompileWatch() if args.torch_compile else None  # results.json: compile_*

    @property
    def model(self) -> torch.nn.Module:
        return self.prepared.model

    @property
    def total_steps(self) -> int:
        return self.prepared.total_steps

    def _resume(self) -> None:
        checkpoint = resolve_checkpoint(self.args.resume_from_checkpoint, self.args.output_dir)
        refuse_unsafe_pickles(checkpoint)
        try:
            self.accelerator.load_state(str(checkpoint))
        except RuntimeError as error:
            # Reached only for a checkpoint without any recipe.yaml to compare (written before checkpoints
            # carried theirs, and copied away from its run): preflight compares the recipe first.
            mismatch = next(
                (line.strip() for line in str(error).splitlines() if "size mismatch" in line), None
            )
            if mismatch is None:
                raise
            raise TunekitError(
                f"resume_from_checkpoint: {checkpoint} holds a model of another shape ({mismatch}); "
                "resume with the recipe that wrote it"
            ) from None
        self.progress = Progress.load(checkpoint)
        self.best_state = load_best_state(checkpoint)
        logger.info("resumed from %s at step %d", checkpoint, self.progress.global_step)
        old_total = self.progress.total_steps
        if old_total is not None and old_total != self.total_steps:  # --max_steps changed: extend
            scheduler, step = self.prepared.scheduler, self.progress.global_step
            self.progress.schedule_extensions.append(
                rebuild_schedule_at(scheduler, step, old_total, self.total_steps)
            )

    def _forget_steps_past_the_checkpoint(self) -> dict[str, Any]:
        """A run killed after its last checkpoint logged steps it will now train again: metrics.jsonl
        drops them, and TensorBoard, whose event files are append-only, gets a purge step (a
        SummaryWriter that opens with one hides the older events from that step on)."""
        if not self.args.resume_from_checkpoint:
            return {}
        step = self.progress.global_step
        if dropped := self.log.drop_after(step):
            logger.info(
                "metrics.jsonl: dropped %d lines logged after the checkpoint (step %d)", dropped, step
            )
        return {"tensorboard": {"purge_step": step + 1}}

    def run(self) -> LoopResult:
        self.model.train()
        self.meter.resume()
        # Log lines (each evaluation's) print above the training bar, not glued to its end.
        with logging_redirect_tqdm() if not self.bar.disable else contextlib.nullcontext():
            while self.progress.global_step < self.total_steps:
                self._run_epoch()
            return self._finish()

    def _run_epoch(self) -> None:
        progress, loader = self.progress, self.prepared.train_dataloader
        loader.set_epoch(progress.epoch)
        if hasattr(loader.collate_fn, "set_epoch"):
            loader.collate_fn.set_epoch(progress.epoch)
        if progress.batches_in_epoch:  # resumed mid-epoch: the same batches, from the next one on
            loader = self.accelerator.skip_first_batches(loader, progress.batches_in_epoch)
        batches = iter(loader)
        while progress.global_step < self.total_steps:
            with self.syncs.watching():  # fetching the batches (their copy to the GPU) and the step
                micro_batches = list(islice(batches, self.args.gradient_accumulation_steps))
                if micro_batches:
                    self._step(micro_batches)
            if not micro_batches:  # the epoch ran out of batches
                progress.epoch += 1
                progress.batches_in_epoch = 0
                self._after_epoch()
                return
            self._after_step()

    def _step(self, micro_batches: list[dict[str, torch.Tensor]]) -> None:
        progress = self.progress
        # Dropout draws from torch's global RNG, which dataloader iterators and evaluation also
        # consume; re-seeding per step makes the stream a function of the step alone, so a
        # resumed run draws exactly what the uninterrupted one did.
        torch.manual_seed(self.args.seed * 1_000_003 + progress.global_step)
        prepared = self.prepared
        work = optimizer_step(
            self.model,
            prepared.optimizer,
            prepared.scheduler,
            micro_batches,
            self.accelerator,
            self.args,
            prepared.masked_only,
        )
        # Anything that reads `work` on the host makes it wait for the device: only add it up.
        self.window.add(work)
        progress.global_step += 1
        self.guard.watch_loss(work.loss, progress.global_step)  # on the device: no wait
        progress.batches_in_epoch += len(micro_batches)
        self.bar.update(1)

    def _after_step(self) -> None:
        """Logging, evaluation, checkpoints and stop requests, at the steps the arguments name."""
        step, args = self.progress.global_step, self.args
        if step % args.logging_steps == 0 or step == self.total_steps:
            self._log_step()
        if args.eval_steps and step % args.eval_steps == 0:
            self.meter.pause(sync=True)
            self.final_metrics = self.evaluate()
            self.meter.resume()
        saved = args.save_steps and step % args.save_steps == 0
        if saved:
            self.save()
        if self.guard.stop_requested():  # SIGTERM/SIGINT on any process: checkpoint and exit
            if not saved:
                self.save()
            raise self.guard.preempted(step)

    def _after_epoch(self) -> None:
        """eval_strategy / save_strategy `epoch`, at the end of each epoch the run goes on after (the
        last one ends in the final evaluation and the saved model)."""
        if self.args.eval_strategy == "epoch":
            self.meter.pause(sync=True)
            self.final_metrics = self.evaluate()
            self.meter.resume()
        if self.args.save_strategy == "epoch":
            self.save()

    def _log_step(self) -> None:
        self.guard.check_finite()
        record = {"epoch": self.progress.epoch, "loss": self.flush()}
        self.last_train_loss = record["loss"]
        record |= {
            "learning_rate": self.prepared.scheduler.get_last_lr()[0],
            "tokens_seen": self.progress.tokens_seen,
        }
        record |= self.meter.report(self._plain(), window=True, fine_tuning=self.fine_tuning)
        record |= self.syncs.take()
        self.log.write(record, self.progress.global_step)
        self.bar.set_postfix(postfix(record))
        self.meter.resume()

    def flush(self, keep_loss: bool = False) -> float:
        """Read the window's device sums and stop the clock: the step loop's only host-device sync
        (at logging steps and checkpoints; evaluation and checkpointing wait on the device anyway)."""
        window, accelerator = self.window, self.accelerator
        # float64 holds token counts exactly far beyond what one logging window sees.
        sums = torch.stack([window.loss.double(), window.tokens.double(), window.targets.double()])
        loss, tokens, targets = accelerator.reduce(sums, "sum").tolist()
        self.meter.pause()
        self.progress.tokens_seen += int(tokens)
        processes = accelerator.num_processes
        self.meter.count(int(tokens), window.examples * processes, window.positions * processes, int(targets))
        self.window = window.counted() if keep_loss else LossWindow(accelerator.device)
        return loss / max(1, window.steps)

    def save(self) -> Path:
        self.guard.check_finite()  # never checkpoint non-finite weights
        self.flush(keep_loss=True)  # the loss window runs on to the next logging step
        self.progress.train_runtime = time.perf_counter() - self.started
        path = save_checkpoint(
            self.accelerator,
            self.args.output_dir,
            self.progress,
            self.args.save_total_limit,
            self.best_state,
            self.recipe,
        )
        self.meter.resume()
        return path

    def evaluate(self) -> dict[str, float]:
        """Evaluate, log, and keep the best weights (on the host) when they are asked for."""
        prepared, args, progress = self.prepared, self.args, self.progress
        if prepared.eval_dataloader is None:
            return {}
        # Under torch.compile, evaluation runs the model uncompiled: eval mode, no_grad and the last
        # short batch would each be a recompilation, and the graphs to keep fast are the training step's.
        metrics = evaluate_model(
            self._plain() if args.torch_compile else self.model,
            prepared.eval_dataloader,
            self.accelerator,
            self.metric_fn,
            masked_only=prepared.masked_only,
        )
        self.log.write({"epoch": progress.epoch, **metrics}, progress.global_step)
        if self.accelerator.is_main_process:
            log_evaluation(progress.global_step, metrics)
        value = metrics.get(f"eval_{args.metric_for_best_model}")
        if value is not None and is_better(value, progress.best_metric, args.metric_for_best_model):
            progress.best_metric, progress.best_step = value, progress.global_step
            if args.load_best_model_at_end:
                state = self._plain().state_dict()
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        return metrics

    def _finish(self) -> LoopResult:
        args, progress = self.args, self.progress
        self.guard.close()
        self.flush()
        throughput = self.meter.report(self._plain(), window=False, fine_tuning=self.fine_tuning)
        if self.compiles is not None:
            throughput |= self.compiles.report()
        if not (args.eval_steps and progress.global_step % args.eval_steps == 0):
            self.final_metrics = self.evaluate()
        if args.load_best_model_at_end and self.best_state is not None:
            self._plain().load_state_dict(self.best_state)
            logger.info(
                "restored the best weights (step %s, %s=%s)",
                progress.best_step,
                args.metric_for_best_model,
                progress.best_metric,
            )
        progress.train_runtime = time.perf_counter() - self.started
        self.bar.close()
        return LoopResult(self.model, progress, self.final_metrics, throughput, self.last_train_loss)

    def _plain(self) -> torch.nn.Module:
        return plain_model(self.accelerator, self.model)
