"""Fixed tensor shapes for the training step, so a GPU (or torch.compile) sees the same step again.

The masked-only MLM step has two data-dependent sizes: M, the masked positions in the batch (the
head's rows), and W, the most targets in one example (the last layer's query width, see
`tunekit.models.last_layer.query_layout`). Both change with every batch, so on CUDA every step was a new
cuDNN attention graph (host time of ~5 ms per forward call on an H200), and under torch.compile a
new shape is a recompile or a slower dynamic-shape graph.

Here both are padded to caps that depend only on the batch's rows, the block length and the
masking probability: the smallest counts that a binomial draw exceeds with probability at most
`TOLERANCE` per batch (M ~ Binomial(rows x length, p); W is the largest of `rows` draws of
Binomial(length, p)), rounded up to a multiple of 8. A batch that still overflows a cap (about one
in 10 000) pads to the next multiple of `OVERFLOW_MULTIPLE` instead: one more shape, not one per
batch. The padding is inert:

- padded rows of the last layer sit at position 0, as `query_layout` already pads shorter examples;
- padded head rows read slot (or position) 0 and carry the target -100, which the cross-entropy
  ignores, so they add nothing to the loss or the gradients (`tests/tunekit/data/test_static_shapes.py`).

Fine-tuning pads each batch to its longest example; under torch.compile that length is rounded up
to a multiple of `LENGTH_BUCKET` (at most max_length / 64 shapes, 8 at 512) rather than of 8. (Eager
on CUDA it is not: a padded batch's attention runs without cuDNN there, whose graphs are per shape,
so a new length costs nothing, and the extra padding would.)
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from tunekit.models.last_layer import query_layout
from tunekit.models.mlm_head import MASKED_POSITIONS, MASKED_ROWS, MASKED_SLOTS

MASKED_LABELS = "masked_labels"  # the target of each padded head row; -100 on the padding
TOLERANCE = 1e-4  # chance per batch that a cap is exceeded
MULTIPLE = 8  # tensor cores tile multiples of 8 rows without remainder
OVERFLOW_MULTIPLE = 64
LENGTH_BUCKET = 64
IGNORE_INDEX = -100


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _log_binomial_pmf(k: int, trials: int, probability: float) -> float:
    return (
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * math.log(probability)
        + (trials - k) * math.log1p(-probability)
    )


@lru_cache(maxsize=256)
def binomial_cap(trials: int, probability: float, draws: int = 1, tolerance: float = TOLERANCE) -> int:
    """The smallest k with draws x P(Binomial(trials, probability) > k) <= tolerance."""
    if probability <= 0 or trials <= 0:
        return 0
    if probability >= 1:
        return trials
    budget = tolerance / max(1, draws)
    tail = 0.0  # P(X > k), summed from the top down until it passes the budget
    for k in range(trials, -1, -1):
        mass = math.exp(_log_binomial_pmf(k, trials, probability))
        if tail + mass > budget:
            return k
        tail += mass
    return 0


@dataclass(frozen=True)
class MaskedCaps:
    width: int  # targets per example: the last layer's query rows
    total: int  # targets per batch: the head's rows


def masked_caps(rows: int, length: int, probability: float) -> MaskedCaps:
    """The caps of a batch of `rows` blocks of `length` tokens masked with `probability`.

    Every position counts as maskable (special tokens never are), so the caps err on the high side."""
    width = binomial_cap(length, probability, draws=rows)
    total = binomial_cap(rows * length, probability)
    return MaskedCaps(
        width=min(length, max(1, round_up(width, MULTIPLE))),
        total=min(rows * length, max(1, round_up(total, MULTIPLE))),
    )


def _fit(actual: int, cap: int, limit: int) -> int:
    return cap if actual <= cap else min(limit, round_up(actual, OVERFLOW_MULTIPLE))


def static_masked_batch_keys(labels: torch.Tensor, probability: float) -> dict[str, torch.Tensor]:
    """`mlm_head.masked_batch_keys` padded to the caps, and the padded rows' targets."""
    rows, length = labels.shape
    caps = masked_caps(rows, length, probability)
    targets = labels != IGNORE_INDEX
    count = int(targets.sum())
    width = _fit(int(targets.sum(1).max()) if labels.numel() else 0, caps.width, length)
    total = _fit(count, caps.total, rows * length)
    query_rows, slots = query_layout(labels, IGNORE_INDEX, width=width)
    positions = targets.reshape(-1).nonzero().squeeze(1)
    padded_positions = torch.zeros(total, dtype=torch.long)
    padded_slots = torch.zeros(total, dtype=torch.long)
    masked_labels = torch.full((total,), IGNORE_INDEX, dtype=labels.dtype)
    padded_positions[:count], padded_slots[:count] = positions, slots
    masked_labels[:count] = labels.reshape(-1)[positions]
    return {
        MASKED_POSITIONS: padded_positions,
        MASKED_ROWS: query_rows,
        MASKED_SLOTS: padded_slots,
        MASKED_LABELS: masked_labels,
    }


def padded_length(longest: int, multiple: int | None, limit: int | None) -> int:
    """A padded batch's width: the longest example rounded up to `multiple`, but never past `limit`
    (the truncation length) unless an example is longer."""
    if not multiple:
        return longest
    width = round_up(longest, multiple)
    return max(longest, min(width, limit)) if limit else width


def wants_static_shapes(torch_compile: bool, device: torch.device | None) -> bool:
    """Static shapes pay on CUDA (a cuDNN graph and CUDA kernels per shape) and under torch.compile
    (a graph per shape); eager on a CPU gains nothing from them, so it keeps the tight shapes."""
    return torch_compile or (device is not None and device.type == "cuda")
