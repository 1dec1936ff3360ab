"""Host time of the collators: tunekit's block-seeded MLM masking against transformers'
`DataCollatorForLanguageModeling` called on the whole batch, as the Trainer runs it; and
fine-tuning's padding (`PaddingCollator`) against `DataCollatorWithPadding` (the Trainer's dynamic
padding) and `default_data_collator` on rows padded in advance (run_glue's `pad_to_max_length`).

On a GPU the collator runs on the host between steps (in the training process unless DataLoader
workers take it), so its milliseconds are a floor under the step time of a small model. Both
collators see the same packed blocks; the median of `repeats` calls is kept.
"""

import itertools
import random
import statistics
import time
from dataclasses import dataclass
from functools import partial

import torch
from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    default_data_collator,
)

from tunekit.data.collators import PaddingCollator
from tunekit.data.masking import mlm_collator
from tunekit.data.tokenization import tokenize_and_pack
from tunekit.errors import TunekitError


@dataclass
class CollationRow:
    batch_size: int
    block_size: int
    tunekit_ms: float
    stock_ms: float

    @property
    def speedup(self) -> float:
        return self.stock_ms / self.tunekit_ms


@dataclass
class PaddingRow:
    batch_size: int
    max_length: int
    mean_length: float
    tunekit_ms: float
    dynamic_ms: float  # DataCollatorWithPadding
    pad_to_max_ms: float  # default_data_collator on rows padded to max_length in advance


def _whole_batch(stock: DataCollatorForLanguageModeling, examples: list[dict]) -> dict[str, torch.Tensor]:
    """The Trainer's way: one stock call on the batch (its blocks carry no block id)."""
    return stock([{"input_ids": example["input_ids"]} for example in examples])


def _median_ms(collate, blocks: list[dict], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        examples = [dict(block) for block in blocks]  # a DataLoader hands each call fresh dicts
        started = time.perf_counter()
        collate(examples)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def time_collators(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    shapes: list[tuple[int, int]],
    repeats: int = 15,
    mlm_probability: float = 0.15,
) -> list[CollationRow]:
    """Milliseconds per batch of each (batch size, block size) in `shapes`, for both collators."""
    rows = []
    for batch_size, block_size in shapes:
        packed = tokenize_and_pack(Dataset.from_dict({"text": texts}), tokenizer, "text", block_size)
        blocks = [dict(packed[i]) for i in range(min(batch_size, len(packed)))]
        if len(blocks) < batch_size:
            raise TunekitError(f"texts: {len(blocks)} blocks of {block_size} tokens, fewer than {batch_size}")
        ours = mlm_collator(tokenizer, mlm_probability, seed=0)
        stock = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=0)
        trainer_collate = partial(_whole_batch, stock)
        rows.append(
            CollationRow(
                batch_size,
                block_size,
                _median_ms(ours, blocks, repeats),
                _median_ms(trainer_collate, blocks, repeats),
            )
        )
    return rows


def format_markdown(rows: list[CollationRow]) -> str:
    lines = [
        "| batch × block | tunekit (ms) | stock collator, whole batch (ms) | tunekit speed-up |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.batch_size} × {r.block_size} | {r.tunekit_ms:.1f} | {r.stock_ms:.1f} | {r.speedup:.2f}× |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def variable_length_examples(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], count: int, max_length: int, seed: int = 0
) -> list[dict]:
    """`count` labelled examples cut from the texts' token stream, their lengths drawn uniformly
    from [max_length / 8, max_length] (seeded), as truncated reviews spread up to the limit."""
    stream = [token for text in texts for token in tokenizer(text)["input_ids"]]
    rng = random.Random(seed)
    lengths = [rng.randint(max(max_length // 8, 1), max_length) for _ in range(count)]
    if sum(lengths) > len(stream):
        raise TunekitError(f"texts: {len(stream)} tokens, fewer than the {sum(lengths)} the examples need")
    starts = itertools.accumulate(lengths[:-1], initial=0)
    return [
        {"input_ids": stream[start : start + length], "labels": rng.randint(0, 1)}
        for start, length in zip(starts, lengths, strict=True)
    ]


def time_padding(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_sizes: list[int],
    max_length: int,
    repeats: int = 15,
) -> list[PaddingRow]:
    """Milliseconds per batch of fine-tuning's three ways to pad, to a multiple of 8 (mixed precision)."""
    rows = []
    for batch_size in batch_sizes:
        examples = variable_length_examples(tokenizer, texts, batch_size, max_length)
        pad = tokenizer.pad_token_id
        padded = [
            {
                "input_ids": e["input_ids"] + [pad] * (max_length - len(e["input_ids"])),
                "attention_mask": [1] * len(e["input_ids"]) + [0] * (max_length - len(e["input_ids"])),
                "labels": e["labels"],
            }
            for e in examples
        ]
        rows.append(
            PaddingRow(
                batch_size,
                max_length,
                statistics.mean(len(e["input_ids"]) for e in examples),
                _median_ms(PaddingCollator(tokenizer, pad_to_multiple_of=8), examples, repeats),
                _median_ms(DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8), examples, repeats),
                _median_ms(default_data_collator, padded, repeats),
            )
        )
    return rows


def format_padding_markdown(rows: list[PaddingRow]) -> str:
    lines = [
        "| batch (mean length / max) | tunekit `PaddingCollator` (ms) | `DataCollatorWithPadding` (ms) "
        "| `default_data_collator`, padded to max (ms) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.batch_size} ({r.mean_length:.0f} / {r.max_length}) | {r.tunekit_ms:.2f} | {r.dynamic_ms:.2f} "
        f"| {r.pad_to_max_ms:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
