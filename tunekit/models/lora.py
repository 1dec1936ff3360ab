"""LoRA fine-tuning with peft: per-architecture defaults, wrapping, and what a LoRA run saves.

Named `lora` rather than `peft` so that `import peft` anywhere in tunekit finds the library.

peft ships LoRA target defaults for BERT, RoBERTa, Llama and GPT-2 (attention only) but none
for ModernBERT or DistilBERT, so tunekit supplies defaults for the encoders: every attention and
feed-forward projection, and in `modules_to_save` the layers between encoder and classifier.
For sequence classification peft itself adds `classifier` and `score` to `modules_to_save`.
"""

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tunekit.atomic import staged_files
from tunekit.config import ModelArguments
from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)

MERGED_DIR = "merged"
BASE_DIR = "base"


@dataclass(frozen=True)
class LoraDefaults:
    target_modules: tuple[str, ...] | None  # None: peft's own default for the model type
    modules_to_save: tuple[str, ...] = ()


LORA_DEFAULTS = {
    # ModernBERT's `head` (dense + norm before the classifier) is pretrained with the MLM head.
    "modernbert": LoraDefaults(("Wqkv", "Wo", "Wi"), ("head",)),
    # BERT's pooler is newly initialised after MLM pretraining, so it must train in full.
    "bert": LoraDefaults(("query", "key", "value", "dense"), ("pooler",)),
    # RoBERTa's classification head (dense + out_proj) is named `classifier`, which peft adds.
    "roberta": LoraDefaults(("query", "key", "value", "dense")),
    # DistilBERT's pre_classifier is new at fine-tuning time, like BERT's pooler.
    "distilbert": LoraDefaults(("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"), ("pre_classifier",)),
    "llama": LoraDefaults(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")),
    "gpt2": LoraDefaults(("c_attn", "c_proj", "c_fc")),
}


def lora_config(model_args: ModelArguments) -> LoraConfig:
    defaults = LORA_DEFAULTS.get(model_args.model_type)
    if defaults is None:
        raise TunekitError(f"use_lora: no LoRA defaults for model_type {model_args.model_type}")
    target_modules = model_args.lora_target_modules or defaults.target_modules
    modules_to_save = model_args.lora_modules_to_save
    if modules_to_save is None:
        modules_to_save = defaults.modules_to_save
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=list(target_modules),
        modules_to_save=list(modules_to_save) or None,
        # GPT-2's projections are Conv1D, whose weight is stored transposed.
        fan_in_fan_out=model_args.model_type == "gpt2",
    )


def apply_lora(model: PreTrainedModel, model_args: ModelArguments) -> PeftModel:
    """Wrap a classifier with LoRA adapters; only adapters and `modules_to_save` stay trainable.

    Weights are kept in fp32: under bf16/fp16 the loop's accelerate autocast computes in 16 bit
    while the optimizer updates fp32 adapters, which is what peft recommends for training.
    """
    if not model_args.model_name_or_path:
        raise TunekitError("use_lora: LoRA adapts a pretrained model; set model_name_or_path")
    try:
        peft_model = get_peft_model(model.float(), lora_config(model_args))
    except ValueError as error:  # e.g. a target module name the model does not have
        raise TunekitError(f"lora_target_modules: {str(error).splitlines()[0]}") from None
    trainable, total = peft_model.get_nb_trainable_parameters()
    logger.info(
        "LoRA: %s of %s parameters trainable (%.2f %%)",
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / total,
    )
    return peft_model


def is_lora(model: torch.nn.Module) -> bool:
    return isinstance(model, PeftModel)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Trainable and total parameters (for a LoRA model, peft's count: adapters + modules_to_save)."""
    if is_lora(model):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_parameters": trainable, "total_parameters": total}


def adapter_base_id(model_args: ModelArguments, output_dir: Path) -> str:
    """What the adapter names as its base model: `lora_base_model_id` when set (a Hub id the user
    vouches for: its config must carry this head's labels and pooling), else the absolute path of
    the base that `save_lora` writes beside the adapter. Never a relative path, which would load
    only from the directory the run was started in."""
    if model_args.lora_base_model_id:
        return model_args.lora_base_model_id
    return str((output_dir / BASE_DIR).resolve())


def save_lora(
    model: PeftModel,
    output_dir: Path,
    model_args: ModelArguments,
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    """The adapter in `output_dir`, its base in `output_dir/base`, and with `merge_adapter` a plain
    transformers model in `output_dir/merged`. Main process only.

    peft (`AutoPeftModelForSequenceClassification`) and transformers (`from_pretrained` or
    `pipeline()` on the adapter dir) build the base from `base_model_name_or_path` with that
    directory's own config. The pretrained model's config has none of the fine-tuning's head
    settings (labels, ModernBERT's classifier_pooling, a decoder's pad token), so the adapter
    names a base saved from the classifier it was trained on: the unadapted weights under the
    fine-tuned config."""
    base_id = adapter_base_id(model_args, output_dir)
    with staged_files(output_dir) as staging:
        if not model_args.lora_base_model_id:
            # unload() on a copy: the LoRA layers give back their base layers, unmerged.
            copy.deepcopy(model).unload().save_pretrained(staging / BASE_DIR)
            tokenizer.save_pretrained(staging / BASE_DIR)
        for config in model.peft_config.values():
            config.base_model_name_or_path = base_id
        # The base keeps the vocabulary (check_model_fits refuses a larger tokenizer), so no embedding
        # copy is needed; saying so also spares peft probing the base path, not yet in place.
        model.save_pretrained(staging, save_embedding_layers=False)
        if model_args.merge_adapter:
            merged_dir = staging / MERGED_DIR
            # merge_and_unload folds B @ A into the base weights in place; the adapter is saved already.
            model.merge_and_unload().save_pretrained(merged_dir)
            tokenizer.save_pretrained(merged_dir)
