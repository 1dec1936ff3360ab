"""What the model card says about how a run was made: the recipe as the run resolved it, the
framework versions, and the FLOPs formula in the words of `tunekit.training.flops`.

`recipe.yaml` keeps the values as given (a resume compares against them), so a field the run
resolved otherwise (a trained tokenizer smaller than `vocab_size`, the architecture of the model
it continued from, `mixed_precision: auto`) or never used (attention heads of an LSTM) would read
as if it had shaped the model. The card shows the resolved value, or marks the field, in a comment.
"""

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import yaml

# Recipe field -> the names a saved config.json may give it (GPT-2 keeps its own names).
_CONFIG_NAMES = {
    "vocab_size": ("vocab_size",),
    "hidden_size": ("hidden_size", "n_embd"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer"),
    "num_attention_heads": ("num_attention_heads", "n_head"),
    "intermediate_size": ("intermediate_size", "n_inner"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
    "classifier_pooling": ("classifier_pooling",),
    "bidirectional": ("bidirectional",),
}
_TRANSFORMER_ONLY = ("num_attention_heads", "intermediate_size", "max_position_embeddings")
_LSTM_ONLY = ("bidirectional", "lstm_fp32_recurrence", "lstm_recurrence_rounding")
_CLASSIFIER_ONLY = ("classifier_pooling", "label_column", "label_names")
# The distributions the Trainer's card lists, under its names, plus accelerate (the loop's library).
_FRAMEWORKS = {
    "transformers": "Transformers",
    "torch": "Pytorch",
    "datasets": "Datasets",
    "tokenizers": "Tokenizers",
    "accelerate": "Accelerate",
}


def framework_versions(uses_peft: bool) -> dict[str, str]:
    """The installed versions a run used, for results.json (the card reads them from there)."""
    names = [*_FRAMEWORKS, *(["peft"] if uses_peft else [])]
    return {name: importlib.metadata.version(name) for name in names}


def framework_versions_section(results: dict[str, Any]) -> str:
    versions = results.get("framework_versions")
    if not versions:
        return "Framework versions were not recorded by this run."
    labels = {**_FRAMEWORKS, "peft": "PEFT"}
    return "\n".join(f"- {labels.get(name, name)} {version}" for name, version in versions.items())


def flops_description(recipe: dict[str, Any]) -> str:
    """The formula `tunekit.training.flops.training_flops_per_token` applies, for the card's compute line."""
    if recipe.get("model_type") == "lstm":
        return "PaLM model FLOPs: 6 x non-embedding weights per token (an LSTM has no attention term)"
    return "PaLM model FLOPs: (6 x non-embedding weights + 12 x layers x width x sequence length) per token"


def _model_config(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _notes(recipe: dict[str, Any], results: dict[str, Any], output_dir: Path) -> dict[str, tuple[Any, str]]:
    """Field -> (value to show, comment) for every field the run did not take as written."""
    config, is_lstm = _model_config(output_dir), recipe.get("model_type") == "lstm"
    notes: dict[str, tuple[Any, str]] = {}
    for name in _TRANSFORMER_ONLY if is_lstm else _LSTM_ONLY:
        if name in recipe:
            notes[name] = (recipe[name], "unused by an LSTM" if is_lstm else "unused (LSTM only)")
    if results.get("task") != "sequence-classification":
        for name in _CLASSIFIER_ONLY:
            if name in recipe:
                notes[name] = (recipe[name], "unused (pretraining)")
    if not recipe.get("use_lora"):
        for name in recipe:
            if name.startswith("lora_") or name == "merge_adapter":
                notes[name] = (recipe[name], "unused (use_lora is false)")
    loaded_tokenizer = recipe.get("tokenizer_name_or_path") or recipe.get("model_name_or_path")
    if loaded_tokenizer and "tokenizer_training_chars" in recipe:
        notes["tokenizer_training_chars"] = (
            recipe["tokenizer_training_chars"],
            "unused (no tokenizer trained)",
        )
    for name, config_names in _CONFIG_NAMES.items():
        if name not in recipe or name in notes:
            continue
        value = next((config[key] for key in config_names if config.get(key) is not None), None)
        if value is not None and value != recipe[name]:
            notes[name] = (value, f"as built; the recipe said {recipe[name]!r}")
    precision = results.get("mixed_precision")
    if precision is not None and recipe.get("mixed_precision") not in (None, precision):
        notes["mixed_precision"] = (precision, f"as run; the recipe said {recipe['mixed_precision']!r}")
    return notes


def resolved_recipe_yaml(recipe: dict[str, Any], results: dict[str, Any], output_dir: Path) -> str:
    """The recipe as YAML, each field the run resolved or ignored with its value and a comment."""
    notes = _notes(recipe, results, output_dir)
    lines = []
    for name, value in recipe.items():
        shown, comment = notes.get(name, (value, ""))
        text = yaml.safe_dump({name: shown}, sort_keys=False)
        if comment:
            first, _, rest = text.partition("\n")
            text = f"{first}  # {comment}\n{rest}"
        lines.append(text)
    return "".join(lines)
