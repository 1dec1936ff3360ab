"""Train a tokenizer on the pretraining text: a BERT-style WordPiece, or a byte-level BPE for decoders.

Trained with `tokenizers` and wrapped as `PreTrainedTokenizerFast`, so the saved directory loads with
plain `AutoTokenizer.from_pretrained` next to the model. The trainer sees an even spread of at most
`tokenizer_training_chars` characters, so its memory does not grow with the corpus.
"""

import math
from collections.abc import Iterator, Sequence

import pyarrow.compute as pc
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tunekit.config.arguments import TOKENIZER_TRAINING_CHARS

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
# Byte-level BPE (GPT-2 style): one token ends a document and opens the next, and a separate pad
# token lets a decoder classifier find each sequence's last real token.
DECODER_SPECIAL_TOKENS = {
    "bos_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<pad>",
}


def train_wordpiece(
    texts: Sequence[str] | Dataset,
    vocab_size: int,
    model_max_length: int,
    text_column: str = "text",
    training_chars: int = TOKENIZER_TRAINING_CHARS,
) -> PreTrainedTokenizerFast:
    """A BERT-style uncased WordPiece trained on `texts` ([PAD] is id 0, like BERT's); deterministic.

    `texts` is a list of strings or a Dataset whose `text_column` is read in batches, so the corpus
    streams from Arrow through the trainer and never sits in Python memory as a whole. The trainer
    sees `training_sample(texts, training_chars)`; the alphabet comes from every text.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    specials = list(SPECIAL_TOKENS.values())
    # The trainer creates "##x" pieces lazily in hash-map order, so their ids, and through merge
    # tie-breaking the whole vocabulary, change from run to run (huggingface/tokenizers#1794).
    # Declaring every "##x" up front gives them fixed ids and makes training reproducible.
    # The normalizer works character by character, so a whitespace-joined batch gives each text's set.
    characters: set[str] = set()
    total_chars = 0  # counted on this pass, so the sample needs no pass of its own
    for batch in _text_batches(texts, text_column):
        characters.update(normalizer.normalize_str("\n".join(batch)))
        total_chars += sum(len(text) for text in batch)
    alphabet = sorted(char for char in characters if not char.isspace())
    sample = training_sample(texts, training_chars, text_column, total_chars)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=specials + [f"##{c}" for c in alphabet],
        # A sample may miss a rare character; declared, it still starts a word instead of making
        # the whole word [UNK]. (Not when the trainer sees everything: that would reorder the ids.)
        initial_alphabet=alphabet if sample is not texts else [],
    )
    scratch = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    scratch.normalizer, scratch.pre_tokenizer = normalizer, pre_tokenizers.BertPreTokenizer()
    scratch.train_from_iterator(_text_batches(sample, text_column), trainer=trainer)

    # Rebuild from the learned vocabulary so the "##x" pieces are ordinary tokens, not specials.
    tokenizer = Tokenizer(models.WordPiece(scratch.get_vocab(), unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    cls_id, sep_id = (tokenizer.token_to_id(SPECIAL_TOKENS[k]) for k in ("cls_token", "sep_token"))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model_max_length, **SPECIAL_TOKENS
    )


def train_byte_level_bpe(
    texts: Sequence[str] | Dataset,
    vocab_size: int,
    model_max_length: int,
    text_column: str = "text",
    training_chars: int = TOKENIZER_TRAINING_CHARS,
) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE trained on `texts`, for causal-LM decoders.

    Every byte is in the initial alphabet, so nothing is ever unknown. Encoding prepends
    `<|endoftext|>`, the token that precedes every document in packed CLM pretraining, so a
    classifier or a prompt starts the way pretraining documents did.
    """
    specials = list(dict.fromkeys(DECODER_SPECIAL_TOKENS.values()))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample = training_sample(texts, training_chars, text_column)
    tokenizer.train_from_iterator(_text_batches(sample, text_column), trainer=trainer)
    bos = DECODER_SPECIAL_TOKENS["bos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, tokenizer.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model_max_length, **DECODER_SPECIAL_TOKENS
    )


def training_sample(
    texts: Sequence[str] | Dataset, max_chars: int, column: str = "text", total_chars: int | None = None
) -> Sequence[str] | Dataset:
    """An even spread of `texts` (every k-th, k fractional) holding about `max_chars` characters.

    `texts` itself when it has no more than that, or when `max_chars` is 0. Even, not a prefix: a
    corpus sorted by label or source would otherwise train the vocabulary on one part of it.
    `total_chars`, when the caller has counted them, saves a pass over the text.
    """
    if max_chars == 0:
        return texts
    total = _character_count(texts, column) if total_chars is None else total_chars
    if total <= max_chars:
        return texts
    keep = max(1, math.floor(len(texts) * max_chars / total))
    indices = [index * len(texts) // keep for index in range(keep)]
    return texts.select(indices) if isinstance(texts, Dataset) else [texts[index] for index in indices]


def _character_count(texts: Sequence[str] | Dataset, column: str) -> int:
    if not isinstance(texts, Dataset):
        return sum(len(text) for text in texts)
    # Arrow counts the characters batch by batch, without making Python strings.
    batches = texts.select_columns([column]).with_format("arrow").iter(batch_size=10_000)
    return sum(pc.sum(pc.utf8_length(batch[column])).as_py() or 0 for batch in batches)


def _text_batches(texts: Sequence[str] | Dataset, column: str, size: int = 1000) -> Iterator[list[str]]:
    if isinstance(texts, Dataset):
        for batch in texts.select_columns([column]).iter(batch_size=size):
            yield batch[column]
        return
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
