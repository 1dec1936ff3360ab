"""The Accelerator every run gets, what it prepares for the loop, and the plain model behind its
wrappers."""

import math
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration
from torch.utils.data import DataLoader
from transformers import get_scheduler

from tunekit.config import TrainArguments
from tunekit.config.trackers import trackers_for
from tunekit.models.attention_masks import install_known_padding_masks, skip_pad_token_search
from tunekit.models.cpu_dropout import install_cpu_dropout
from tunekit.models.gradient_checkpointing import enable_gradient_checkpointing
from tunekit.models.last_layer import has_query_rows, install_first_token_last_layer
from tunekit.models.mlm_head import install_masked_only_head
from tunekit.training.fsdp import configure_fsdp_wrapping
from tunekit.training.precision import configure_denormals, configure_matmul, resolve_mixed_precision
from tunekit.training.rtd import replaced_token_detection_of
from tunekit.training.step import build_optimizer


def make_accelerator(args: TrainArguments) -> Accelerator:
    trackers = trackers_for(args.report_to)
    # Every run (a demo stage, a study cell) brings its own precision; accelerate keeps one global
    # state per process, so it is reset here. The process group (PartialState) is kept.
    AcceleratorState._reset_state()
    accelerator = Accelerator(
        cpu=args.use_cpu,
        mixed_precision=resolve_mixed_precision(args.mixed_precision, args.use_cpu),
        # accelerate compiles the model in `prepare` (after wrapping it for DDP). Packed pretraining
        # feeds blocks of one shape, so it compiles once (the masked-only MLM head adds one dynamic
        # dimension, the number of masked tokens, marked dynamic after its first recompile).
        # Fine-tuning pads each batch to its longest example: dynamo recompiles on the second new
        # length, then compiles a shape-generic graph; static shapes (tunekit.data.static_shapes) bound
        # the distinct shapes. Saved weights carry no
        # `_orig_mod.` prefix: whatever saves or reads the state unwraps with keep_torch_compile=False.
        dynamo_backend=args.torch_compile_backend if args.torch_compile else None,
        log_with=trackers or None,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=f"{args.output_dir}/runs"
        ),
        # A seedable sampler makes the shuffle order a function of (seed, epoch), identical on every
        # process and after a resume. non_blocking: batches in pinned memory (`loader_options`)
        # reach the GPU without the host waiting for the step before.
        dataloader_config=DataLoaderConfiguration(
            use_seedable_sampler=True, data_seed=args.seed, non_blocking=args.dataloader_pin_memory
        ),
        # The loop steps the scheduler itself, once per optimizer step, whatever the process count.
        step_scheduler_with_optimizer=False,
    )
    configure_matmul(accelerator.device)
    configure_denormals(accelerator.device, args.flush_denormal)
    return accelerator


def plain_model(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """The model without DDP or compile wrappers: what is saved, and whose state is read."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


@dataclass
class PreparedTraining:
    """The model, optimizer, scheduler and dataloaders after `accelerator.prepare`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_dataloader: DataLoader
    eval_dataloader: DataLoader | None
    total_steps: int
    masked_only: bool  # the MLM head runs on the masked positions only
    last_layer_rows: str | None  # where the last layer runs: "targets", "first_token" or everywhere

    @classmethod
    def build(
        cls,
        model: torch.nn.Module,
        train_dataloader: DataLoader,
        eval_dataloader: DataLoader | None,
        args: TrainArguments,
        accelerator: Accelerator,
    ) -> "PreparedTraining":
        # Replaced-token detection installs it on its generator: its targets are the masked tokens too.
        masked_only = install_masked_only_head(model) or replaced_token_detection_of(model) is not None
        # The last layer runs only where the head reads it: the targets, or a classifier's position 0.
        first_token = install_first_token_last_layer(model)
        last_layer_rows = (
            "first_token" if first_token else "targets" if masked_only and has_query_rows(model) else None
        )
        # A batch that carries a mask is padded (the collators drop all-ones masks), so transformers
        # builds it without asking the device whether it is all ones, and a batch without one is not
        # searched for pad tokens.
        install_known_padding_masks(model)
        skip_pad_token_search(model)
        # Dropout that draws a quarter of torch's random numbers where it runs on a CPU, uncompiled;
        # like the attention, each call decides, so on CUDA or under compile it is torch's.
        install_cpu_dropout(model)
        if args.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        # On the device before the optimizer is built, so it can pick the fused CUDA kernel.
        optimizer = build_optimizer(model.to(accelerator.device), args)
        configure_fsdp_wrapping(accelerator, model)
        model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
        # Drop accelerate's per-forward autocast + fp32-output wrapper: `model_forward` enters
        # autocast itself, and the wrapper would upcast the full logits to fp32.
        accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        if eval_dataloader is not None:
            eval_dataloader = accelerator.prepare(eval_dataloader)
        steps_per_epoch = max(1, math.ceil(len(train_dataloader) / args.gradient_accumulation_steps))
        total_steps = (
            args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
        )
        scheduler = get_scheduler(
            args.lr_scheduler_type,
            optimizer,
            num_warmup_steps=args.warmup_steps_for(total_steps),
            num_training_steps=total_steps,
        )
        accelerator.register_for_checkpointing(scheduler)
        return cls(
            model,
            optimizer,
            scheduler,
            train_dataloader,
            eval_dataloader,
            total_steps,
            masked_only,
            last_layer_rows,
        )
