"""Which examples go together in a batch: length-grouped training batches, length-sorted evaluation.

Fine-tuning pads each batch to its longest example, so a batch that mixes a 40-token review with a
512-token one spends most of its compute on padding. Grouping examples of similar length (the
Trainer's `group_by_length`) removes most of that waste.

The training order is transformers' `get_length_grouped_indices` (shuffle, cut into mega-batches of
up to 50 optimizer steps, sort each by length, longest batch first) drawn from a generator seeded by
(seed, epoch) alone. So the order is the same on every process, after a resume, and at any
gradient-accumulation split: the unit that is grouped is one optimizer step's examples over all
processes, and accelerate's `BatchSamplerShard` deals its consecutive micro-batches out to the
processes, so 2 processes x batch 4 see the examples of 1 process x batch 8. accelerate's
`set_epoch` reaches `LengthGroupedSampler.set_epoch` through the DataLoader's batch sampler,
also under DDP and after `skip_first_batches`.
"""

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset
from torch.utils.data import DataLoader, Sampler
from transformers.trainer_pt_utils import get_length_grouped_indices

from tunekit.config import TrainArguments


def sequence_lengths(dataset: Dataset, column: str = "input_ids", batch_size: int = 10_000) -> np.ndarray:
    """Token count of every example, read from the Arrow list lengths (no token ids reach Python)."""
    lengths = [
        pc.list_value_length(table[column]).to_numpy(zero_copy_only=False)
        for table in dataset.select_columns([column]).with_format("arrow").iter(batch_size=batch_size)
    ]
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed that depends on (seed, epoch) only; hashing keeps (42, 1) and (43, 0) apart."""
    digest = hashlib.blake2b(repr(("length-grouped", seed, epoch)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class LengthGroupedSampler(Sampler[int]):
    """Example indices in which every `group_size` consecutive indices have similar lengths.

    `group_size` is the number of examples in one optimizer step over all processes; the
    DataLoader cuts the order into micro-batches, which are then length-homogeneous as well.
    """

    def __init__(self, lengths: np.ndarray, group_size: int, seed: int) -> None:
        self.lengths = [int(length) for length in lengths]
        self.group_size, self.seed, self.epoch = group_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        yield from get_length_grouped_indices(self.lengths, self.group_size, generator=generator)


def loader_options(args: TrainArguments, device: torch.device | None) -> dict[str, Any]:
    """Worker processes, and pinned memory on CUDA: with it (and accelerate's `non_blocking`, set in
    `make_accelerator`) a batch's copy to the GPU is queued behind the running step instead of
    making the host wait for that step to finish."""
    pin = args.dataloader_pin_memory and device is not None and device.type == "cuda"
    return {"num_workers": args.dataloader_num_workers, "pin_memory": pin}


def train_dataloader(
    dataset: Dataset,
    collate_fn: Callable,
    args: TrainArguments,
    num_processes: int,
    device: torch.device | None = None,
) -> DataLoader:
    """Shuffled (accelerate seeds the shuffle per epoch) or, with `group_by_length`, length-grouped."""
    common = {
        "batch_size": args.per_device_train_batch_size,
        "collate_fn": collate_fn,
        **loader_options(args, device),
    }
    if not args.group_by_length:
        return DataLoader(dataset, shuffle=True, **common)
    step_examples = args.per_device_train_batch_size * args.gradient_accumulation_steps * num_processes
    sampler = LengthGroupedSampler(sequence_lengths(dataset), step_examples, args.seed)
    return DataLoader(dataset, sampler=sampler, **common)


def eval_dataloader(
    dataset: Dataset, collate_fn: Callable, args: TrainArguments, device: torch.device | None = None
) -> DataLoader:
    """Examples longest first, so each batch pads to lengths close to its own; the loss sums and
    the classification metrics do not depend on the order in which examples are scored."""
    order = np.argsort(-sequence_lengths(dataset), kind="stable").tolist()
    return DataLoader(
        dataset,
        sampler=order,
        batch_size=args.per_device_eval_batch_size,
        collate_fn=collate_fn,
        **loader_options(args, device),
    )
