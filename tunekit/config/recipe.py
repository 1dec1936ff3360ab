"""Recipes: YAML files parsed into the typed dataclasses of `tunekit.config.arguments` and
`tunekit.config.training`, with CLI overrides.

Only this module knows YAML and the command line; everything below it takes the dataclasses.
"""

import dataclasses
import difflib
import logging
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from tunekit.config import aliases as recipe_aliases
from tunekit.config.arguments import MODEL_TYPES, TRANSFORMER_TYPES, DataArguments, ModelArguments
from tunekit.config.lora import PEFT_SECTION_KEYS
from tunekit.config.training import SECRET_FIELDS, TrainArguments
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

logger = logging.getLogger(__name__)
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)

RECIPE_DATACLASSES = (ModelArguments, DataArguments, TrainArguments)


class _RecipeParser(HfArgumentParser):
    """argparse calls `error()` and exits with a usage dump; we want one line naming the field."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # HfArgumentParser adds a dashed alias to every flag; name the field once, as recipes spell it.
        raise TunekitError(re.sub(r"(--\w+)/--[\w-]+", r"\1", message))


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


def _yaml_position(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else f" ({problem})"


def load_recipe_file(path: str | Path, known: set[str]) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise TunekitError(f"recipe {path} is a directory; expected a YAML file")
    if not path.is_file():
        raise TunekitError(f"recipe not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise TunekitError(f"recipe {path} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise TunekitError(f"{path}: not valid YAML{_yaml_position(error)}") from None
    if values is None:
        logger.info("recipe %s is empty: every field takes its default", path)
        values = {}
    if not isinstance(values, dict):
        raise TunekitError(f"{path}: a recipe is a mapping of field: value")
    if "use_lora" in known:  # recipes of the model fields, which include LoRA's
        values = _flatten_peft_section(values, path)
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TunekitError(f"{path}: unknown key {key!r}{hint}")
    return values


def _flatten_peft_section(values: dict[str, Any], path: Path) -> dict[str, Any]:
    """`peft: {r: 8, target_modules: [...]}` (peft's LoraConfig names) -> `use_lora: true, lora_r: 8, ...`.

    The section reads like the peft config a user knows; the flat fields are what the command line
    overrides (`--lora_r 16`) and what the saved recipe.yaml holds.
    """
    section = values.pop("peft", None)
    if section is None:
        return values
    if not isinstance(section, dict):
        raise TunekitError(
            f"{path}: peft must be a mapping of LoRA settings ({', '.join(PEFT_SECTION_KEYS)})"
        )
    flat = {"use_lora": True}
    for key, value in section.items():
        if key not in PEFT_SECTION_KEYS:
            close = difflib.get_close_matches(str(key), PEFT_SECTION_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TunekitError(f"{path}: unknown key peft.{key}{hint}; known: {', '.join(PEFT_SECTION_KEYS)}")
        flat[PEFT_SECTION_KEYS[key]] = value
    for name in flat:
        if name in values:
            raise TunekitError(f"{path}: {name} is given both at top level and in the peft section")
    return {**values, **flat}


def parse_recipe(
    argv: list[str] | None = None, dataclass_types: tuple[type, ...] = RECIPE_DATACLASSES
) -> tuple[Any, ...]:
    """Parse `[RECIPE.yaml] [--field value ...]` into one instance of each dataclass.

    The recipe gives values, later command-line flags override them, and every value goes
    through the same argparse type check. Unknown keys and bad values raise TunekitError.
    """
    # The Trainer's and TRL's spellings (bf16, use_peft, --config, ...) become tunekit's fields here.
    argv = recipe_aliases.take_config_flag(list(sys.argv[1:] if argv is None else argv))
    parser = _RecipeParser(dataclass_types, allow_abbrev=False, epilog=recipe_aliases.HELP)
    known = {f.name for cls in dataclass_types for f in dataclasses.fields(cls)}
    recipe_path = argv.pop(0) if argv and not argv[0].startswith("-") else None
    command_line, given = recipe_aliases.resolve_command_line(_attach_negative_numbers(argv), known)
    recipe_argv: list[str] = []
    if recipe_path is not None:
        defaults = {f.name: f.default for cls in dataclass_types for f in dataclasses.fields(cls)}
        aliases = {alias for alias, target in recipe_aliases.ALIASES.items() if target in known}
        values = recipe_aliases.resolve_layer(
            load_recipe_file(recipe_path, known | aliases), known, recipe_path
        )
        recipe_argv = _yaml_to_argv(recipe_aliases.drop_replaced(values, given), defaults)
        try:
            parser.parse_known_args(recipe_argv)
        except TunekitError as error:
            raise TunekitError(f"{recipe_path}: {error}") from None
    namespace, unknown = parser.parse_known_args(recipe_argv + command_line)
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


def _attach_negative_numbers(argv: list[str]) -> list[str]:
    """`--learning_rate -1e-3` -> `--learning_rate=-1e-3`: argparse takes '-1e-3' for a flag, and the
    user then hears 'expected one argument' instead of what is wrong with the value."""
    joined: list[str] = []
    for item in argv:
        if joined and _NEGATIVE_NUMBER.match(item) and joined[-1].startswith("--") and "=" not in joined[-1]:
            joined[-1] = f"{joined[-1]}={item}"
        else:
            joined.append(item)
    return joined


def recipe_dict(*configs: Any) -> dict[str, Any]:
    """The resolved recipe, flat like the YAML it came from, for saving next to the outputs."""
    merged: dict[str, Any] = {}
    for config in configs:
        # The Hub token never reaches a file: recipes are saved next to models and pushed.
        merged.update({k: v for k, v in dataclasses.asdict(config).items() if k not in SECRET_FIELDS})
    return merged


def recipe_defaults(*configs: Any) -> dict[str, Any]:
    """What each field of the configs' dataclasses holds when a recipe does not set it."""
    defaults: dict[str, Any] = {}
    for config in configs:
        for field in dataclasses.fields(config):
            if field.default is not dataclasses.MISSING:
                defaults[field.name] = field.default
            elif field.default_factory is not dataclasses.MISSING:
                defaults[field.name] = field.default_factory()
    return defaults


def save_recipe(path: str | Path, *configs: Any) -> None:
    Path(path).write_text(yaml.safe_dump(recipe_dict(*configs), sort_keys=False))
