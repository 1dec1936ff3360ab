"""Small helpers the recipe dataclasses share: help text, clearing 'none' words, positivity checks.
Every check raises TunekitError with one line that names the field."""

from typing import Any

from tunekit.errors import TunekitError


def help_meta(text: str, **metadata: Any) -> dict[str, Any]:
    """A field's metadata: its --help text plus anything HfArgumentParser reads (choices, ...)."""
    return {"help": text, **metadata}


def clear_none_words(obj: object, *names: str) -> None:
    """`--field none` (or `""`, or `field: null` in YAML) clears an optional text field."""
    for name in names:
        if getattr(obj, name) in ("", "none", "None", "null"):
            setattr(obj, name, None)


def require_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise TunekitError(f"{name} must be positive, got {value}")
