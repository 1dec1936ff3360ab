"""Model-ready features: load a tokenizer, pack blocks for pretraining, encode classification examples.

Training a tokenizer is `tunekit.data.tokenizer_training`; batching them is `tunekit.data.collators`
(padding, LM targets) and `tunekit.data.masking` (MLM).
"""

from itertools import chain

from datasets import Dataset, Features, List, Value
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from tunekit.errors import TunekitError

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
