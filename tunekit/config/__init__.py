"""Recipes: the typed fields of a run (`arguments`: model and data, `training`, `lora`) and the one
parser from YAML + command-line overrides to them (`recipe`). Every package below takes the dataclasses."""

from tunekit.config.recipe import (
    MODEL_TYPES,
    RECIPE_DATACLASSES,
    TRANSFORMER_TYPES,
    DataArguments,
    ModelArguments,
    TrainArguments,
    load_recipe_file,
    parse_recipe,
    recipe_defaults,
    recipe_dict,
    save_recipe,
)

__all__ = [
    "MODEL_TYPES",
    "RECIPE_DATACLASSES",
    "TRANSFORMER_TYPES",
    "DataArguments",
    "ModelArguments",
    "TrainArguments",
    "load_recipe_file",
    "parse_recipe",
    "recipe_defaults",
    "recipe_dict",
    "save_recipe",
]
