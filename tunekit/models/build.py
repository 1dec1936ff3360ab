"""Build every model from a recipe: encoders (masked LM), decoders (causal LM: llama, gpt2), the LSTM.

Transformers are built with `AutoConfig.for_model` + `from_config`, never custom classes, so
every saved model loads with plain `AutoModel*.from_pretrained` and `pipeline()`.

A decoder differs from an encoder here (`AutoModelForCausalLM`, no padded vocabulary rows, a pad
token for last-token pooling) and, each with its own concept, in: its recipe types
(`config.arguments.DECODER_TYPES`), its byte-level BPE tokenizer (`data.tokenizer_training`), its
next-token targets (`data.collators.BlockLanguageModelCollator`) and GPT-2's pad-token search, skipped
by `models.attention_masks.skip_pad_token_search`.
"""

import logging
from typing import Any

import torch
import transformers
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunekit.config import ModelArguments
from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification
from tunekit.models.lstm_lm import LSTMForLanguageModeling

logger = logging.getLogger(__name__)

VOCAB_MULTIPLE = 64
PADDING_ROW_BIAS = -1e4  # exp() of it is 0 in fp32, bf16 and fp16 alike; fp16 still represents it

# Each architecture names its dropout knobs differently; one recipe field drives them all.
_DROPOUT_FIELDS = {
    "modernbert": ("embedding_dropout", "mlp_dropout", "attention_dropout", "classifier_dropout"),
    "bert": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "roberta": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "distilbert": ("dropout", "attention_dropout", "seq_classif_dropout"),
    "gpt2": ("resid_pdrop", "embd_pdrop", "attn_pdrop"),
    "llama": ("attention_dropout",),
}
_SIZE_FIELDS = {
    "distilbert": {
        "hidden_size": "dim",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
        "intermediate_size": "hidden_dim",
    },
    "gpt2": {
        "hidden_size": "n_embd",
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "intermediate_size": "n_inner",
        "max_position_embeddings": "n_positions",
    },
}


def _token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "mask_token_id": tokenizer.mask_token_id,
    }
    # Encoders without separate BOS/EOS reuse CLS/SEP, as ModernBERT's own config does; a decoder's
    # byte-level BPE has its own.
    ids["bos_token_id"] = (
        tokenizer.bos_token_id if tokenizer.bos_token_id is not None else ids["cls_token_id"]
    )
    ids["eos_token_id"] = (
        tokenizer.eos_token_id if tokenizer.eos_token_id is not None else ids["sep_token_id"]
    )
    return {key: value for key, value in ids.items() if value is not None}


def _overrides(model_args: ModelArguments) -> dict[str, Any]:
    """Config fields a recipe may change even when starting from a pretrained model."""
    dropout_fields = _DROPOUT_FIELDS.get(model_args.model_type, ("dropout",))
    values: dict[str, Any] = dict.fromkeys(dropout_fields, model_args.dropout)
    if model_args.classifier_pooling is not None and model_args.model_type in ("modernbert", "lstm"):
        values["classifier_pooling"] = model_args.classifier_pooling
    if model_args.is_lstm:
        values["fp32_recurrence"] = model_args.lstm_fp32_recurrence
        values["recurrence_rounding"] = model_args.lstm_recurrence_rounding
    return values


def transformer_config(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, **extra: Any
) -> PretrainedConfig:
    sizes = {
        name: getattr(model_args, name)
        for name in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        )
    }
    renames = _SIZE_FIELDS.get(model_args.model_type, {})
    sizes = {renames.get(name, name): value for name, value in sizes.items()}
    return AutoConfig.for_model(
        model_args.model_type,
        vocab_size=padded_vocab_size(len(tokenizer)),
        **sizes,
        **{**_token_ids(tokenizer), **_overrides(model_args), **extra},
    )


def padded_vocab_size(size: int) -> int:
    """Embedding rows rounded up to a multiple of 64: matmuls over the vocabulary then tile evenly on
    tensor cores. The tokenizer keeps its size; the extra rows are never inputs nor targets."""
    return -(-size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def pad_vocabulary(model: PreTrainedModel, used_rows: int) -> PreTrainedModel:
    """Round a transformer's embedding rows up to a multiple of 64 and keep the rows from `used_rows`
    on out of every prediction.

    Their decoder bias is set far below any real logit, so they are never an argmax (fill-mask,
    probes), their softmax probability is 0 and they get no gradient: training leaves them there.
    A decoder without a bias cannot be silenced this way; its padding rows stay as initialised."""
    if model.config.vocab_size % VOCAB_MULTIPLE:
        model.resize_token_embeddings(model.config.vocab_size, pad_to_multiple_of=VOCAB_MULTIPLE)
    output = model.get_output_embeddings()
    bias = getattr(output, "bias", None)
    if bias is not None and used_rows < bias.shape[0]:
        with torch.no_grad():
            bias[used_rows:] = PADDING_ROW_BIAS
    return model


def lstm_config(model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, **extra: Any) -> LSTMConfig:
    return LSTMConfig(
        vocab_size=len(tokenizer),
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        bidirectional=model_args.bidirectional,
        dropout=model_args.dropout,
        classifier_pooling=model_args.classifier_pooling or "mean",
        fp32_recurrence=model_args.lstm_fp32_recurrence,
        recurrence_rounding=model_args.lstm_recurrence_rounding,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


HEAD_SWAP_MESSAGE = "new classification head; {head} weights dropped"
_reported_head_swaps: set[str] = set()


class _LoadReportFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


def _outside(keys: list[str], prefix: str) -> bool:
    return all(not key.startswith(prefix + ".") for key in keys)


def _pretraining_head(config: Any) -> str:
    """The head the checkpoint was pretrained with: its saved config still names its class."""
    if config.model_type == LSTMConfig.model_type:
        return "language-model decoder"
    if any(name.endswith("ForCausalLM") for name in config.architectures or []):
        return "causal-LM head"
    return "MLM decoder"


def from_pretrained_reporting_head_swap(auto_class: Any, source: str, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(source)`, with the expected head swap said in one line.

    transformers logs a LOAD REPORT table whenever keys are missing or unexpected. Loading a
    classifier from a pretraining checkpoint always drops the pretraining decoder and creates the
    classification head, so that table is expected: it is filtered out (on the modeling_utils
    logger, for this call only) and the load info checked instead. Keys inside the shared encoder that are
    missing or unexpected are not expected, and still warn."""
    modeling_logger = transformers.utils.logging.get_logger("transformers.modeling_utils")
    # A filter, not a level: transformers 5 checks this logger's level to decide other warnings.
    mute = _LoadReportFilter()
    modeling_logger.addFilter(mute)
    try:
        model, info = auto_class.from_pretrained(source, output_loading_info=True, **kwargs)
    finally:
        modeling_logger.removeFilter(mute)
    missing, unexpected = list(info["missing_keys"]), list(info["unexpected_keys"])
    mismatched = list(info.get("mismatched_keys", []))
    prefix = model.base_model_prefix
    if not (missing or unexpected or mismatched):
        return model
    if not mismatched and _outside(missing, prefix) and _outside(unexpected, prefix):
        if source not in _reported_head_swaps:  # once per source: a study loads it for every cell
            _reported_head_swaps.add(source)
            logger.info(HEAD_SWAP_MESSAGE.format(head=_pretraining_head(model.config)) + " (%s)", source)
        return model
    logger.warning(
        "loading %s: missing keys %s; unexpected keys %s; mismatched keys %s",
        source,
        missing or "none",
        unexpected or "none",
        mismatched or "none",
    )
    return model


def _load_options(model_args: ModelArguments) -> dict[str, Any]:
    """transformers' loading options a recipe may name (`trust_remote_code`, `attn_implementation`)."""
    options: dict[str, Any] = {}
    if model_args.trust_remote_code and not model_args.is_lstm:  # tunekit's LSTM is registered locally
        options["trust_remote_code"] = True
    if model_args.attn_implementation is not None:
        options["attn_implementation"] = model_args.attn_implementation
    return options


def _from_config(auto_class: Any, config: PretrainedConfig, model_args: ModelArguments) -> PreTrainedModel:
    try:
        return auto_class.from_config(config, **_load_options(model_args))
    except (ImportError, ValueError) as error:
        if model_args.attn_implementation is None:
            raise
        raise TunekitError(
            f"attn_implementation={model_args.attn_implementation}: {str(error).splitlines()[0]}"
        ) from None


def _from_pretrained(auto_class: Any, model_args: ModelArguments, **kwargs: Any) -> PreTrainedModel:
    source = model_args.model_name_or_path
    kwargs |= _load_options(model_args)
    try:
        saved_type = AutoConfig.from_pretrained(
            source, trust_remote_code=model_args.trust_remote_code
        ).model_type
        expected = LSTMConfig.model_type if model_args.is_lstm else model_args.model_type
        if saved_type != expected:
            raise TunekitError(
                f"model_name_or_path {source!r} holds a {saved_type} model but model_type is "
                f"{model_args.model_type}"
            )
        return from_pretrained_reporting_head_swap(auto_class, source, **kwargs)
    except (ImportError, ValueError) as error:
        if model_args.attn_implementation is not None and "attn" in str(error).lower():
            raise TunekitError(
                f"attn_implementation={model_args.attn_implementation}: {str(error).splitlines()[0]}"
            ) from None
        raise TunekitError(
            f"model_name_or_path: cannot load {source!r} ({str(error).splitlines()[0]})"
        ) from None
    except (OSError, SafetensorError) as error:
        raise TunekitError(
            f"model_name_or_path: cannot load {source!r} ({str(error).splitlines()[0]})"
        ) from None


def build_pretraining_model(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase
) -> PreTrainedModel:
    """A masked LM for encoders, a causal LM for decoders (llama, gpt2), a (bi)directional language
    model for the LSTM (ULMFiT-style)."""
    if model_args.is_lstm:
        try:
            if model_args.model_name_or_path:
                return _from_pretrained(LSTMForLanguageModeling, model_args, **_overrides(model_args))
            return LSTMForLanguageModeling(lstm_config(model_args, tokenizer))
        except ValueError as error:
            raise TunekitError(str(error)) from None
    auto_class = AutoModelForCausalLM if model_args.is_decoder else AutoModelForMaskedLM
    if model_args.model_name_or_path:
        model = _from_pretrained(auto_class, model_args, **_overrides(model_args))
        used_rows = max(len(tokenizer), model.config.vocab_size)
    else:
        model = _from_config(auto_class, transformer_config(model_args, tokenizer), model_args)
        used_rows = len(tokenizer)
    # A decoder's head has no bias to silence padded rows with: it keeps the tokenizer's size.
    return model if model_args.is_decoder else pad_vocabulary(model, used_rows)


def build_classifier(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, label_names: list[str]
) -> PreTrainedModel:
    """A sequence classifier: from a pretrained dir (new head) or randomly initialised from config.

    A decoder classifies from its last real token, found through `config.pad_token_id` (as
    transformers' *ForSequenceClassification does, for right or left padding).
    """
    labels: dict[str, Any] = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }
    if model_args.is_decoder:
        labels["pad_token_id"] = tokenizer.pad_token_id
    if model_args.is_lstm:
        if model_args.model_name_or_path:
            return _from_pretrained(AutoModelForSequenceClassification, model_args, **labels)
        return LSTMForSequenceClassification(lstm_config(model_args, tokenizer, **labels))
    if model_args.model_name_or_path:
        return _from_pretrained(
            AutoModelForSequenceClassification, model_args, **labels, **_overrides(model_args)
        )
    config = transformer_config(model_args, tokenizer, **labels)
    return _from_config(AutoModelForSequenceClassification, config, model_args)


def count_parameters(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())
