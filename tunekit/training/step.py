"""The optimizer (`build_optimizer`) and one optimizer step's work: the forward pass under autocast,
the summed loss, backward, the update.

Nothing here makes the host wait for the device: losses and counts stay on the device, in a
`LossWindow` that the loop reads only at logging steps.
"""

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from torch.nn.functional import cross_entropy

from tunekit.config import TrainArguments
from tunekit.data.static_shapes import MASKED_LABELS
from tunekit.models.mlm_head import MASKED_KEYS, MASKED_POSITIONS, masked_targets
from tunekit.training.document_words import DocumentWordsOutput
from tunekit.training.rtd import micro_batch_loss, replaced_token_detection_of


def build_optimizer(model: torch.nn.Module, args: TrainArguments) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases, norms and other 1-d parameters (as in BERT).

    Fused (one kernel for all parameters, the Trainer's default on CUDA) when every parameter is on
    CUDA; otherwise torch's own default for the device (the same AdamW the Trainer's `adamw_torch`
    runs, so the benchmark compares loops, not optimizer kernels)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(param.is_cuda for param in decay + no_decay)
    return torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        fused=fused or None,
    )


def summed_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    positions: torch.Tensor | None = None,
    position_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example summed cross-entropy over target positions, and per-example target counts.

    `positions` (flat indices into labels) means the logits hold only those rows, in that order (the
    masked-only MLM head). The cross-entropy runs in the logits' own dtype: for 16-bit logits
    log-softmax accumulates in fp32 inside the kernel, so no fp32 copy of the logits is made; the
    per-row losses are summed in fp32. `position_labels` are the targets at `positions` when those
    are padded to a fixed count (`tunekit.data.static_shapes`): -100 on the padding, which adds nothing."""
    batch = labels.shape[0]
    counts = (labels != -100).view(batch, -1).sum(1)
    flat_logits = logits.reshape(-1, logits.shape[-1])
    if positions is None:
        per_row = cross_entropy(flat_logits, labels.reshape(-1), ignore_index=-100, reduction="none")
        return per_row.float().view(batch, -1).sum(1), counts
    targets, examples = masked_targets(labels, positions)
    if position_labels is not None:
        targets = position_labels
    per_row = cross_entropy(flat_logits, targets, ignore_index=-100, reduction="none").float()
    return torch.zeros(batch, device=per_row.device).index_add_(0, examples, per_row), counts


def model_forward(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], accelerator: Accelerator, masked_only: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-example loss sums, per-example target counts, logits) of one batch."""
    left_out = {"labels", MASKED_LABELS, *MASKED_KEYS}
    inputs = {key: value for key, value in batch.items() if key not in left_out}
    positions = batch.get(MASKED_POSITIONS) if masked_only else None
    if positions is not None:
        inputs.update({key: batch[key] for key in MASKED_KEYS if key in batch})
    # The loop owns autocast (accelerate's per-forward wrapper, which would also upcast the full
    # logits to fp32, is removed in `train_loop`).
    with accelerator.autocast():
        output = model(**inputs)
    if isinstance(output, DocumentWordsOutput):  # objective dbow: one loss per document, from the model
        counted = batch["labels"] != -100
        return output.document_losses * counted, counted.long(), output.logits
    logits = output.logits
    position_labels = batch.get(MASKED_LABELS) if positions is not None else None
    return (*summed_loss(logits, batch["labels"], positions, position_labels), logits)


@dataclass
class StepWork:
    """What one optimizer step did, still on the device (reading it would make the host wait)."""

    loss: torch.Tensor  # this process's share of the step's mean loss; summed over processes = the mean
    tokens: torch.Tensor  # real (unpadded) tokens this process trained on
    targets: torch.Tensor  # target items (masked tokens, or examples) this process trained on
    examples: int  # sequences this process trained on
    positions: int  # padded positions this process ran (examples x padded length)


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    window: list[dict[str, torch.Tensor]],
    accelerator: Accelerator,
    args: TrainArguments,
    masked_only: bool,
) -> StepWork:
    """Forward and backward over the step's micro-batches, then clip and step; no host-device sync.

    Items (masked tokens, or examples) are counted over the whole optimizer step and all processes
    (an all-reduce, which the host does not wait on), so the gradient is the exact per-item mean."""
    detection = replaced_token_detection_of(model)
    if detection is None:
        local_items = sum((b["labels"] != -100).sum() for b in window)
        items = accelerator.reduce(local_items.clone(), "sum").clamp(min=1)
    else:  # two loss terms, two denominators (masked and real tokens), both counted over the step
        counts = detection.step_counts(window)
        local_items, items = counts[0], accelerator.reduce(counts.clone(), "sum").clamp(min=1)
    step_loss = torch.zeros((), device=accelerator.device)
    tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
    for index, batch in enumerate(window):
        last = index == len(window) - 1
        with nullcontext() if last else accelerator.no_sync(model):
            if detection is not None:
                share = micro_batch_loss(model, detection, batch, accelerator, items)
                accelerator.backward(share * accelerator.num_processes)
                step_loss += share.detach()  # already divided by the step's counts
            else:
                loss_sum, _, _ = model_forward(model, batch, accelerator, masked_only)
                # DDP averages gradients over processes; multiplying back makes the result the
                # global per-item mean.
                accelerator.backward(loss_sum.sum() * accelerator.num_processes / items)
                step_loss += loss_sum.sum().detach()
        tokens += batch["attention_mask"].sum() if "attention_mask" in batch else batch["input_ids"].numel()
    if args.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    shapes = [batch["input_ids"].shape for batch in window]
    return StepWork(
        loss=step_loss if detection is not None else step_loss / items,
        tokens=tokens,
        targets=local_items,
        examples=sum(shape[0] for shape in shapes),
        positions=sum(shape[0] * shape[1] for shape in shapes),
    )


class LossWindow:
    """Device-side sums since the last logging step; read (one host-device sync) only when logging."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.tokens = torch.zeros((), dtype=torch.long, device=device)
        self.targets = torch.zeros((), dtype=torch.long, device=device)
        self.steps, self.examples, self.positions = 0, 0, 0

    def counted(self) -> "LossWindow":
        """A window that keeps this one's loss and steps but restarts its counts."""
        fresh = LossWindow(self.loss.device)
        fresh.loss, fresh.steps = self.loss, self.steps
        return fresh

    def add(self, work: StepWork) -> None:
        self.loss += work.loss
        self.tokens += work.tokens
        self.targets += work.targets
        self.steps += 1
        self.examples += work.examples
        self.positions += work.positions
