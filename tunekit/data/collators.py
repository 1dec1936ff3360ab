"""Batches for the loop: classification examples padded per batch, and packed blocks with their
language-model targets (next token for a decoder; next and previous token for the biLSTM).
MLM masking is `tunekit.data.masking`."""

from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from tunekit.config import ModelArguments
from tunekit.data.masking import ReplacedTokenCollator, mlm_collator
from tunekit.models.lstm import LENGTHS


class PaddingCollator:
    """Pads each batch of token ids to its own longest example (on the tokenizer's padding side)
    and adds the attention mask; under fp16/bf16 up to a multiple of 8, the shapes tensor cores
    tile without remainder. The same tensors as DataCollatorWithPadding, built in one numpy array:
    its `tokenizer.pad` turns the nested Python lists into tensors element by element, 17.9 ms for
    32 IMDb-length reviews on this project's CPU against 0.45 ms here (one thread), and on a GPU
    that is host time every step waits for (`tests/tunekit/data/test_collators.py` checks they agree).

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


def language_model_labels(input_ids: torch.Tensor, bidirectional: bool, pad_token_id: int) -> torch.Tensor:
    """Next-token targets (and previous-token targets when bidirectional), -100 where none exists."""
    ignore = torch.full_like(input_ids[:, :1], -100)
    labels = [torch.cat([input_ids[:, 1:], ignore], dim=1)]
    if bidirectional:
        labels.append(torch.cat([ignore, input_ids[:, :-1]], dim=1))
    labels = torch.cat(labels, dim=1)
    return labels.masked_fill(labels == pad_token_id, -100)


class BlockLanguageModelCollator:
    """Stacks packed blocks and adds next-token targets (and, for the biLSTM LM, previous-token ones).

    Blocks are full, so there is no attention mask (an all-ones one only makes transformers ask the
    device whether it is all ones); the LSTM gets the lengths as host integers instead."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, lstm: bool, bidirectional: bool) -> None:
        self.pad_token_id, self.lstm, self.bidirectional = tokenizer.pad_token_id, lstm, bidirectional

    def __call__(self, examples: list[dict]) -> dict[str, Any]:
        input_ids = torch.tensor([example["input_ids"] for example in examples])
        labels = language_model_labels(input_ids, self.bidirectional, self.pad_token_id)
        batch: dict[str, Any] = {"input_ids": input_ids, "labels": labels}
        if self.lstm:
            batch[LENGTHS] = (input_ids.shape[1],) * input_ids.shape[0]
        return batch


def pretraining_collator(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, mlm_probability: float, seed: int
) -> Any:
    if model_args.is_lstm or model_args.is_decoder:
        # A decoder is the unidirectional case: next-token targets only, shifted here, not in the model.
        lstm = model_args.is_lstm
        return BlockLanguageModelCollator(tokenizer, lstm, lstm and model_args.bidirectional)
    if model_args.is_replaced_token_detection:  # the MLM batch plus the replacements' seeded draws
        return ReplacedTokenCollator(tokenizer=tokenizer, mlm_probability=mlm_probability, seed=seed)
    return mlm_collator(tokenizer, mlm_probability, seed)
