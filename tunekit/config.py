"""Recipes: YAML files parsed into the typed dataclasses of `tunekit.arguments`, with CLI overrides.

Only this module knows YAML and the command line; everything below it takes the dataclasses.
"""

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from tunekit.arguments import (
    MODEL_TYPES,
    SECRET_FIELDS,
    TRANSFORMER_TYPES,
    DataArguments,
    ModelArguments,
    TrainArguments,
)
from tunekit.errors import TunekitError

__all__ = [
    "MODEL_TYPES",
    "TRANSFORMER_TYPES",
    "DataArguments",
    "ModelArguments",
    "TrainArguments",
    "parse_recipe",
    "recipe_dict",
    "save_recipe",
]

RECIPE_DATACLASSES = (ModelArguments, DataArguments, TrainArguments)


class _RecipeParser(HfArgumentParser):
    """argparse calls `error()` and exits with a usage dump; we want one line naming the field."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise TunekitError(message)


def _yaml_to_argv(values: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    # Feeding the YAML through argparse gives recipe values and CLI overrides one type check,
    # and lets the CLI win simply by coming later.
    argv: list[str] = []
    for key, value in values.items():
        if value is None:
            # `key: null` keeps a None default; elsewhere it becomes the word "none", which the
            # optional text fields (e.g. validation_split) read as None.
            if defaults.get(key) is not None:
                argv.extend([f"--{key}", "none"])
            continue
        if isinstance(value, list):
            argv.extend([f"--{key}", *(str(item) for item in value)])
        else:
            # `--key=value` keeps a value that starts with "-" (e.g. stage_overrides) a value.
            argv.append(f"--{key}={str(value).lower() if isinstance(value, bool) else value}")
    return argv


def load_recipe_file(path: str | Path, known: set[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise TunekitError(f"recipe not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise TunekitError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise TunekitError(f"{path}: a recipe is a mapping of field: value")
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TunekitError(f"{path}: unknown key {key!r}{hint}")
    return values


def parse_recipe(
    argv: list[str] | None = None, dataclass_types: tuple[type, ...] = RECIPE_DATACLASSES
) -> tuple[Any, ...]:
    """Parse `[RECIPE.yaml] [--field value ...]` into one instance of each dataclass.

    The recipe gives values, later command-line flags override them, and every value goes
    through the same argparse type check. Unknown keys and bad values raise TunekitError.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _RecipeParser(dataclass_types, allow_abbrev=False)
    known = {f.name for cls in dataclass_types for f in dataclasses.fields(cls)}
    recipe_argv: list[str] = []
    if argv and not argv[0].startswith("-"):
        recipe_path = argv.pop(0)
        defaults = {f.name: f.default for cls in dataclass_types for f in dataclasses.fields(cls)}
        recipe_argv = _yaml_to_argv(load_recipe_file(recipe_path, known), defaults)
        try:
            parser.parse_known_args(recipe_argv)
        except TunekitError as error:
            raise TunekitError(f"{recipe_path}: {error}") from None
    namespace, unknown = parser.parse_known_args(recipe_argv + argv)
    if unknown:
        flag = next((item for item in unknown if item.startswith("-")), unknown[0])
        name = flag.lstrip("-").split("=")[0].replace("-", "_")
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        raise TunekitError(f"unknown argument {flag!r}{hint}")
    outputs = []
    for cls in dataclass_types:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        outputs.append(cls(**{k: v for k, v in vars(namespace).items() if k in names}))
    return tuple(outputs)


def recipe_dict(*configs: Any) -> dict[str, Any]:
    """The resolved recipe, flat like the YAML it came from, for saving next to the outputs."""
    merged: dict[str, Any] = {}
    for config in configs:
        # The Hub token never reaches a file: recipes are saved next to models and pushed.
        merged.update({k: v for k, v in dataclasses.asdict(config).items() if k not in SECRET_FIELDS})
    return merged


def save_recipe(path: str | Path, *configs: Any) -> None:
    Path(path).write_text(yaml.safe_dump(recipe_dict(*configs), sort_keys=False))
