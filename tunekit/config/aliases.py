"""The spellings Trainer and TRL users type, accepted as aliases of tunekit's recipe fields.

`tunekit.config.parse_recipe` is the one place that calls this: a recipe's mapping and the command
line's flags are two layers, and each goes through `resolve_layer` before argparse sees it:

- `bf16` / `fp16` (booleans, bare on the command line or with a value) -> `mixed_precision`;
- `use_peft` (TRL) -> `use_lora`;
- `--config RECIPE.yaml` (TRL, alignment-handbook) -> the positional recipe.

The Trainer's other names (`eval_strategy`, `save_strategy`, `warmup_steps`, `gradient_checkpointing`,
`trust_remote_code`, `attn_implementation`) are fields of their own. Two spellings of one setting
that disagree within a layer are refused in one line; across layers the command line wins, as it
does for every field, and a field it sets replaces the recipe's other spelling of the same setting
(`--warmup_steps 50` over a recipe's `warmup_ratio: 0.1`).
"""

from typing import Any

from tunekit.errors import TunekitError

# Alias -> the tunekit field it sets.
ALIASES = {"bf16": "mixed_precision", "fp16": "mixed_precision", "use_peft": "use_lora"}
# Spellings of one setting: a layer that sets one of them drops what an earlier layer set for the others.
SAME_SETTING = (
    frozenset({"warmup_steps", "warmup_ratio"}),
    frozenset({"eval_strategy", "eval_steps"}),
    frozenset({"save_strategy", "save_steps"}),
)
CONFIG_FLAG = "--config"
HELP = (
    "Also accepted, as Trainer/TRL users spell them: --bf16 / --fp16 [true|false] (= --mixed_precision), "
    "--use_peft [true|false] (= --use_lora), --config RECIPE.yaml (= the positional recipe)."
)
_TRUE, _FALSE = ("true", "1", "yes", "y", "t"), ("false", "0", "no", "n", "f")


def _as_bool(name: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).lower()
    if word in _TRUE or value == []:  # a bare flag on the command line
        return True
    if word in _FALSE:
        return False
    raise TunekitError(f"{source}: {name} must be true or false, got {value!r}")


def _same(a: Any, b: Any) -> bool:
    def words(value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        return [str(item).lower() for item in items]

    return words(a) == words(b)


def resolve_layer(values: dict[str, Any], known: set[str], source: str) -> dict[str, Any]:
    """One layer's `{name: value}` with the aliases replaced by tunekit's fields.

    Only aliases whose target field is among `known` are read (a study has no `mixed_precision`)."""
    values = dict(values)
    present = {alias: values.pop(alias) for alias in list(values) if ALIASES.get(alias) in known}
    derived: dict[str, tuple[str, Any]] = {}  # field -> (how it was spelled, value)
    precision = {name: _as_bool(name, present[name], source) for name in ("bf16", "fp16") if name in present}
    if precision:
        if len(precision) == 2 and all(precision.values()):
            raise TunekitError(f"{source}: bf16 and fp16 are both true; choose one (mixed_precision)")
        chosen = next((name for name, on in precision.items() if on), None)
        spelled = " and ".join(f"{name}={str(on).lower()}" for name, on in precision.items())
        derived["mixed_precision"] = (spelled, chosen or "no")
    if "use_peft" in present:
        use = _as_bool("use_peft", present["use_peft"], source)
        derived["use_lora"] = (f"use_peft={str(use).lower()}", use)
    for field, (spelled, value) in derived.items():
        if field in values and not _same(values[field], value):
            given = values[field]
            given = str(given).lower() if isinstance(given, bool) else given
            raise TunekitError(f"{source}: {spelled} and {field}={given} disagree; give one of them")
        values[field] = value
    _refuse_two_spellings(values, source)
    return values


def _number(value: Any) -> float:
    try:
        return float(value[0] if isinstance(value, list) else value)
    except (TypeError, ValueError, IndexError):
        return 0.0  # argparse names the bad value later, with the field


def _refuse_two_spellings(values: dict[str, Any], source: str) -> None:
    """Within one layer, two spellings of one setting that both ask for something disagree."""
    if _number(values.get("warmup_steps", 0)) > 0 and _number(values.get("warmup_ratio", 0)) > 0:
        raise TunekitError(
            f"{source}: warmup_steps={values['warmup_steps']} and warmup_ratio={values['warmup_ratio']} "
            "disagree; give one of them"
        )
    for kind in ("eval", "save"):
        strategy, steps = values.get(f"{kind}_strategy"), values.get(f"{kind}_steps")
        if strategy is None or steps is None:
            continue
        strategy = str(strategy[0] if isinstance(strategy, list) else strategy).lower()
        if strategy in ("no", "epoch") and _number(steps) > 0:
            raise TunekitError(
                f"{source}: {kind}_strategy={strategy} and {kind}_steps={steps} disagree; give one of them"
            )


def drop_replaced(recipe: dict[str, Any], command_line: set[str]) -> dict[str, Any]:
    """The recipe's spellings of settings the command line (`command_line`: the fields it sets) sets
    another way, dropped (to their defaults)."""
    dropped: set[str] = set()
    for group in SAME_SETTING:
        if given := group & command_line:
            dropped |= group - given
    return {key: value for key, value in recipe.items() if key not in dropped}


def split_flags(argv: list[str]) -> list[tuple[str, list[str]]]:
    """`--a 1 --b --c x y` -> [('a', ['1']), ('b', []), ('c', ['x', 'y'])]; `--a=1` -> ('a', ['1']).

    Tokens before the first flag are kept under the name '' (argparse then names them)."""
    flags: list[tuple[str, list[str]]] = []
    for item in argv:
        if item.startswith("--"):
            name, eq, value = item[2:].partition("=")
            flags.append((name, [value] if eq else []))
        elif flags:
            flags[-1][1].append(item)
        else:
            flags.append(("", [item]))
    return flags


def join_flags(flags: list[tuple[str, list[str]]]) -> list[str]:
    argv: list[str] = []
    for name, values in flags:
        if name:
            # `--key=value` keeps a value that starts with "-" a value.
            argv.extend([f"--{name}={values[0]}"] if len(values) == 1 else [f"--{name}", *values])
        else:
            argv.extend(values)
    return argv


def resolve_command_line(argv: list[str], known: set[str]) -> tuple[list[str], set[str]]:
    """The command line's flags with aliases replaced, and the names of the fields it sets."""
    flags = split_flags(argv)
    # A bare flag is `[]`; one value is that value.
    layer = {name: (values[0] if len(values) == 1 else values) for name, values in flags if name}
    resolved = resolve_layer(layer, known, "command line")
    aliased = layer.keys() - resolved.keys()
    if not aliased:
        return argv, set(layer)
    derived = {ALIASES[name] for name in aliased}
    kept = [(name, values) for name, values in flags if name not in aliased and name not in derived]
    for name in derived:
        value = resolved[name]
        kept.append((name, [str(value).lower() if isinstance(value, bool) else str(value)]))
    return join_flags(kept), {name for name, _ in kept if name}


def take_config_flag(argv: list[str]) -> list[str]:
    """`--config RECIPE.yaml` (TRL's spelling) -> the positional recipe; both at once is refused."""
    flags = split_flags(argv)
    configs = [values for name, values in flags if name == "config"]
    if not configs:
        return argv
    if len(configs) > 1 or len(configs[0]) != 1:
        raise TunekitError("--config takes one recipe file, given once")
    positional = argv[0] if argv and not argv[0].startswith("-") else None
    if positional is not None:
        raise TunekitError(
            f"--config {configs[0][0]} and the positional recipe {positional} name two recipes; give one"
        )
    return [configs[0][0], *join_flags([(name, values) for name, values in flags if name != "config"])]


def config_flag_given(argv: list[str]) -> bool:
    return any(item == CONFIG_FLAG or item.startswith(CONFIG_FLAG + "=") for item in argv)
