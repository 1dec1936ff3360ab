"""Host time of the pretraining collator: tunekit's block-seeded MLM masking against transformers'
`DataCollatorForLanguageModeling` called on the whole batch, as the Trainer runs it.

On a GPU the collator runs on the host between steps (in the training process unless DataLoader
workers take it), so its milliseconds are a floor under the step time of a small model. Both
collators see the same packed blocks; the median of `repeats` calls is kept.
"""

import statistics
import time
from dataclasses import dataclass
from functools import partial

import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from tunekit.errors import TunekitError
from tunekit.tokenization import mlm_collator, tokenize_and_pack


@dataclass
class CollationRow:
    batch_size: int
    block_size: int
    tunekit_ms: float
    stock_ms: float

    @property
    def speedup(self) -> float:
        return self.stock_ms / self.tunekit_ms


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
