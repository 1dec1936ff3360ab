"""Model-ready features: load a tokenizer, pack blocks for MLM, pad classification batches.

Training a tokenizer is `tunekit.tokenizer_training`.
"""

import hashlib
import os
from itertools import chain

import torch
from datasets import Dataset, Features, List, Value
from transformers import (
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from tunekit.errors import TunekitError
from tunekit.mlm_head import masked_batch_keys

BLOCK_ID = "block_id"


def load_tokenizer(name_or_path: str, field_name: str = "tokenizer_name_or_path") -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TunekitError(
            f"{field_name}: cannot load a tokenizer from {name_or_path!r} ({detail})"
        ) from None


def tokenize_and_pack(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    text_column: str,
    block_size: int,
    num_proc: int | None = None,
    load_from_cache: bool = True,
) -> Dataset:
    """Concatenate documents ([SEP]-separated) and cut them into [CLS] … [SEP] blocks of `block_size`.

    A tokenizer without [CLS]/[SEP] (the decoders' byte-level BPE) separates documents with its
    EOS token and cuts plain blocks, as transformers' run_clm does. Packing wastes no compute on
    padding; the tail shorter than a block is dropped. Each block gets a `block_id` so MLM masking
    can be a pure function of which blocks are in a batch.
    """
    if block_size < 8:
        raise TunekitError(f"max_seq_length must be at least 8 for pretraining, got {block_size}")
    wrap = tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None
    separator = tokenizer.sep_token_id if wrap else tokenizer.eos_token_id
    opening, closing = ([tokenizer.cls_token_id], [tokenizer.sep_token_id]) if wrap else ([], [])
    body = block_size - len(opening) - len(closing)

    # Documents longer than the model are expected here (packing cuts them); silence the
    # tokenizer's one-time "sequence longer than maximum" warning, which would suggest otherwise.
    tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True

    def tokenize_and_pack_batch(batch: dict[str, list]) -> dict[str, list]:
        ids = tokenizer(batch[text_column], add_special_tokens=False)["input_ids"]
        stream = list(chain.from_iterable(doc + [separator] for doc in ids))
        usable = len(stream) // body * body
        blocks = [[*opening, *stream[i : i + body], *closing] for i in range(0, usable, body)]
        return {"input_ids": blocks}

    # One pass, so the token stream of the whole corpus is never written out before it is cut, and
    # int32 ids, half of what Arrow would infer: each batch of 1 000 documents drops its own tail.
    packed = dataset.map(
        tokenize_and_pack_batch,
        batched=True,
        batch_size=1000,
        remove_columns=dataset.column_names,
        features=Features({"input_ids": List(Value("int32"))}),
        num_proc=num_proc,
        load_from_cache_file=load_from_cache,
        desc=f"tokenizing and packing into {block_size}-token blocks",
    )
    if len(packed) == 0:
        raise TunekitError(
            f"the training text is shorter than one block of max_seq_length={block_size} tokens"
        )
    return packed.add_column(BLOCK_ID, list(range(len(packed))))


def tokenize_for_classification(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    text_column: str,
    label_column: str,
    max_length: int,
    num_proc: int | None = None,
    load_from_cache: bool = True,
) -> Dataset:
    """Truncated token ids and `labels`; padding waits for the batch (see DataCollatorWithPadding)."""

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        return {"input_ids": encoded["input_ids"], "labels": batch[label_column]}

    return dataset.map(
        tokenize,
        batched=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        load_from_cache_file=load_from_cache,
        desc="tokenizing",
    )


def padding_collator(tokenizer: PreTrainedTokenizerBase, mixed_precision: str) -> DataCollatorWithPadding:
    """Pads each batch to its own longest example; under fp16/bf16 up to a multiple of 8, the
    shapes tensor cores tile without remainder."""
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None if mixed_precision == "no" else 8)


class BlockSeededMLMCollator(DataCollatorForLanguageModeling):
    """transformers' MLM collator whose mask for a block depends only on (seed, epoch, block id).

    The stock collator draws from one global RNG, so masks change with batch size, process
    count, and accelerate's one-batch-ahead prefetch after a resume. Seeding each block on its
    own makes a run with gradient accumulation, on several processes, or resumed from a
    checkpoint see exactly the masks of a plain uninterrupted run, while every epoch still
    gets fresh masks (RoBERTa's dynamic masking). The loop calls `set_epoch`.
    """

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def torch_call(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        rows = []
        for example in examples:
            key = repr((self.seed, self.epoch, example.pop(BLOCK_ID))).encode()
            seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)
            self.generator, self._generator_pid = torch.Generator().manual_seed(seed), os.getpid()
            rows.append(super().torch_call([example]))
        # Packed blocks all have the same length, so rows stack without padding.
        batch = {key: torch.cat([row[key] for row in rows]) for key in rows[0]}
        # No padding, so no mask: attention then runs without one (ModernBERT keeps SDPA's flash
        # path, which any mask, even all ones, would cost it).
        if "attention_mask" in batch and bool(batch["attention_mask"].all()):
            del batch["attention_mask"]
        # Computed here, on the host, so the masked-only MLM head (and the last layer) never make
        # the host wait for the device to learn how many tokens are masked.
        batch.update(masked_batch_keys(batch["labels"]))
        return batch


def mlm_collator(
    tokenizer: PreTrainedTokenizerBase, mlm_probability: float, seed: int
) -> BlockSeededMLMCollator:
    return BlockSeededMLMCollator(tokenizer=tokenizer, mlm_probability=mlm_probability, seed=seed)
