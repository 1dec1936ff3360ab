"""Model-ready features: load a tokenizer, pack blocks for MLM, pad classification batches.

Training a tokenizer is `tunekit.tokenizer_training`.
"""

import hashlib
from itertools import chain
from typing import Any

import numpy as np
import torch
from datasets import Dataset, Features, List, Value
from transformers import (
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
)

from tunekit.errors import TunekitError
from tunekit.lstm import LENGTHS
from tunekit.mlm_head import masked_batch_keys

BLOCK_ID = "block_id"


def load_tokenizer(
    name_or_path: str, field_name: str = "tokenizer_name_or_path", trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
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
    """Truncated token ids and `labels`; padding waits for the batch (see PaddingCollator)."""

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


class PaddingCollator:
    """Pads each batch of token ids to its own longest example (on the tokenizer's padding side)
    and adds the attention mask; under fp16/bf16 up to a multiple of 8, the shapes tensor cores
    tile without remainder. The same tensors as DataCollatorWithPadding, built in one numpy array:
    its `tokenizer.pad` turns the nested Python lists into tensors element by element, 17.9 ms for
    32 IMDb-length reviews on this project's CPU against 0.45 ms here (one thread), and on a GPU
    that is host time every step waits for (`tests/test_tokenization.py` checks they agree).

    A batch without padding carries no attention mask. It changes no result: transformers' SDPA
    mask builder drops an all-ones mask anyway, but it finds out with `mask.all()`, which makes the
    host wait for the device on every forward; the collator knows it on the host for free. For the
    same reason, `with_lengths` adds each row's length as host integers (`lstm.LENGTHS`), which is
    what the LSTM's packing needs."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        pad_to_multiple_of: int | None = None,
        with_lengths: bool = False,
    ) -> None:
        self.pad_token_id = tokenizer.pad_token_id
        self.left = tokenizer.padding_side == "left"
        self.pad_to_multiple_of = pad_to_multiple_of
        self.with_lengths = with_lengths

    def __call__(self, features: list[dict]) -> dict[str, Any]:
        lengths = [len(feature["input_ids"]) for feature in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(features), width), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(features), width), dtype=np.int64)
        for row, (feature, length) in enumerate(zip(features, lengths, strict=True)):
            columns = slice(width - length, width) if self.left else slice(0, length)
            input_ids[row, columns] = feature["input_ids"]
            attention_mask[row, columns] = 1
        batch = {"input_ids": torch.from_numpy(input_ids)}
        if min(lengths) < width:
            batch["attention_mask"] = torch.from_numpy(attention_mask)
        if self.with_lengths:
            batch[LENGTHS] = tuple(lengths)  # a tuple of ints: accelerate moves no part of it
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([feature["labels"] for feature in features])
        return batch


def padding_collator(
    tokenizer: PreTrainedTokenizerBase, mixed_precision: str, with_lengths: bool = False
) -> PaddingCollator:
    return PaddingCollator(tokenizer, None if mixed_precision == "no" else 8, with_lengths)


class BlockSeededMLMCollator(DataCollatorForLanguageModeling):
    """transformers' MLM masking whose mask for a block depends only on (seed, epoch, block id).

    The stock collator draws from one global RNG, so masks change with batch size, process
    count, and accelerate's one-batch-ahead prefetch after a resume. Seeding each block on its
    own makes a run with gradient accumulation, on several processes, or resumed from a
    checkpoint see exactly the masks of a plain uninterrupted run, while every epoch still
    gets fresh masks (RoBERTa's dynamic masking). The loop calls `set_epoch`.

    Each block's generator makes the stock `torch_mask_tokens` draws, in its order and shapes, so
    the masks are the stock collator's for a one-block batch; everything else runs once per batch
    on the stacked blocks. Calling the stock collator once per block, as this class first did,
    took 98 ms of host time for 128 blocks of 256 tokens (17 ms now; the stock collator on the
    whole batch, as the Trainer uses it, 43 ms; one core of the development CPU), the likeliest
    cause of tunekit's 0.46x the Trainer's tokens/s on an H200, where the host is the bottleneck.
    """

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def block_generator(self, block_id: int) -> torch.Generator:
        key = repr((self.seed, self.epoch, block_id)).encode()
        seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)
        return torch.Generator().manual_seed(seed)

    def torch_call(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        # Packed blocks all have the same length, so they stack without padding, and no attention
        # mask is needed (ModernBERT keeps SDPA's flash path, which any mask, even all ones, costs).
        inputs = torch.tensor([example["input_ids"] for example in examples], dtype=torch.long)
        labels = inputs.clone()
        special = torch.isin(inputs, torch.tensor(self.tokenizer.all_special_ids, dtype=torch.long))
        probability = torch.full(inputs.shape, self.mlm_probability).masked_fill_(special, 0.0)
        keep_random = not (self.mask_replace_prob == 1 or self.random_replace_prob == 0)
        row_shape = (1, inputs.shape[1])
        replace_probability = torch.full(row_shape, self.mask_replace_prob)
        if keep_random:  # the stock scaling: the share of the not-[MASK]ed that turn random
            scaled = self.random_replace_prob / (1 - self.mask_replace_prob)
            random_probability = torch.full(row_shape, scaled)
        vocabulary = len(self.tokenizer)
        draws: list[list[torch.Tensor]] = [[], [], [], []]  # masked, replaced, randomized, random words
        for row, example in enumerate(examples):
            generator = self.block_generator(example[BLOCK_ID])
            draws[0].append(torch.bernoulli(probability[row : row + 1], generator=generator))
            draws[1].append(torch.bernoulli(replace_probability, generator=generator))
            if keep_random:
                draws[2].append(torch.bernoulli(random_probability, generator=generator))
                draws[3].append(torch.randint(vocabulary, row_shape, generator=generator))
        masked = torch.cat(draws[0]).bool()
        replaced = torch.cat(draws[1]).bool() & masked
        labels[~masked] = -100
        inputs[replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        if keep_random:
            randomized = torch.cat(draws[2]).bool() & masked & ~replaced
            inputs[randomized] = torch.cat(draws[3])[randomized]
        batch = {"input_ids": inputs, "labels": labels}
        # Computed here, on the host, so the masked-only MLM head (and the last layer) never make
        # the host wait for the device to learn how many tokens are masked.
        batch.update(masked_batch_keys(labels))
        return batch


def mlm_collator(
    tokenizer: PreTrainedTokenizerBase, mlm_probability: float, seed: int
) -> BlockSeededMLMCollator:
    return BlockSeededMLMCollator(tokenizer=tokenizer, mlm_probability=mlm_probability, seed=seed)
