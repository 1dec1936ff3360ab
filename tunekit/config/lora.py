"""The LoRA fields of a recipe (peft), kept apart from the model fields they extend.

A recipe sets them flat (`use_lora: true`, `lora_r: 16`) or in a `peft:` section that uses peft's
own LoraConfig names; `tunekit.config` maps the section onto these fields.
"""

from dataclasses import dataclass, field

from tunekit.config.fields import clear_none_words, help_meta, require_positive
from tunekit.errors import TunekitError

# peft's LoraConfig names for the keys of a recipe's `peft:` section, and the flat fields they fill.
PEFT_SECTION_KEYS = {
    "r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "lora_target_modules",
    "modules_to_save": "lora_modules_to_save",
}


@dataclass
class LoraArguments:
    use_lora: bool = field(
        default=False,
        metadata=help_meta(
            "Fine-tune LoRA adapters (peft) instead of all weights; a `peft:` section sets it."
        ),
    )
    lora_r: int = field(default=8, metadata=help_meta("LoRA rank (peft: r)."))
    lora_alpha: int = field(default=16, metadata=help_meta("LoRA scaling numerator (peft: lora_alpha)."))
    lora_dropout: float = field(
        default=0.05, metadata=help_meta("Dropout on the LoRA input (peft: lora_dropout).")
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata=help_meta(
            "Module names that get adapters (peft: target_modules); unset = tunekit's per-type default."
        ),
    )
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata=help_meta(
            "Modules trained in full and saved with the adapter (peft: modules_to_save); unset = per-type "
            "default. peft always adds the classifier."
        ),
    )
    lora_base_model_id: str | None = field(
        default=None,
        metadata=help_meta(
            "Hub id written as the adapter's base_model_name_or_path (its config must carry this run's "
            "labels and pooling); unset = the absolute path of output_dir/base, which the run writes."
        ),
    )
    merge_adapter: bool = field(
        default=False,
        metadata=help_meta(
            "LoRA: also save the adapter merged into the model (merge_and_unload) under merged/."
        ),
    )

    def check_lora_fields(self) -> None:
        clear_none_words(self, "lora_base_model_id")
        require_positive(self, "lora_r", "lora_alpha")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise TunekitError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
