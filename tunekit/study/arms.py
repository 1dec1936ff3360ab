"""The study's arms, each one `Arm`, all in one registry: `REGISTRY`.

An arm is what the study fine-tunes at every label budget and seed: an architecture
(`transformer`, the masked-LM encoder; `decoder`, a causal-LM decoder; `lstm`), started from a
pretraining or from scratch, optionally with LoRA adapters (peft) or a bf16 LSTM recurrence. Its
name, `<architecture>_<init>[_lora][_bf16]`, is what recipes, results.jsonl and the report show.

Adding an arm is one `REGISTRY` entry (plus the stage recipes it names): the runner, the report,
the plots and the probes read everything they need from the `Arm`.
"""

from dataclasses import dataclass

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

from tunekit.errors import TunekitError
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.objectives import OBJECTIVE_CHANGES


@dataclass(frozen=True)
class Probe:
    """How a pretrained model is probed before fine-tuning, and how the report names it."""

    model: str  # the report's words for the pretrained model, e.g. "masked-LM encoder"
    model_class: type[torch.nn.Module]  # loads the saved pretraining (`from_pretrained`)
    left_to_right: bool  # the word probe asks for the next word (not for a masked one)
    word_probe: bool = True  # False: the saved model has no LM head to ask (an RTD encoder)


@dataclass(frozen=True)
class Pretraining:
    """One pretraining run, shared by every arm that starts from it."""

    name: str  # its directory, `pretrain/<name>`, and its key in the report
    recipe: str  # the StudyArguments field naming its stage recipe
    probe: Probe
    probe_recipe: str  # the StudyArguments field naming the labelled recipe its linear probe reads
    # With match_lstm_pretraining_tokens, it trains on as many tokens as this pretraining saw.
    matches_tokens_of: str | None = None
    bf16: bool = False  # pretrained with a bf16 recurrence (bf16_recurrence)
    # Recipe fields it changes (tunekit.study.objectives: another objective for the same encoder).
    recipe_changes: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class PlotStyle:
    color: str
    linestyle: str
    marker: str = "o"


@dataclass(frozen=True)
class Arm:
    name: str
    architecture: str
    finetune_recipe: str  # the StudyArguments field naming its fine-tuning recipe
    pretraining: Pretraining | None  # None: fine-tunes from scratch
    style: PlotStyle
    lora: bool = False  # fine-tunes LoRA adapters instead of every weight
    bf16: bool = False  # the LSTM recurrence runs in bf16 (bf16_recurrence)
    fp32_twin: str | None = None  # a bf16 arm's arm with an fp32 recurrence (its cell_overrides too)
    scratch_twin: str | None = None  # what the gain of pretraining is measured against

    @property
    def init(self) -> str:
        """`pretrained` or `scratch`."""
        return "scratch" if self.pretraining is None else "pretrained"

    @property
    def label(self) -> str:
        """The plot legend's name: `LSTM, pretrained, bf16`."""
        return self.name.replace("lstm", "LSTM").replace("_", ", ")


def bf16_recurrence(rounded: bool) -> dict[str, object]:
    """What a `*_bf16` arm or pretraining changes in its stage recipes: bf16 autocast with the
    recurrence in bf16 or, `rounded`, no autocast and an fp32 recurrence rounded to bf16 after
    every operation (the same numerics, far cheaper on CPUs without bf16 units)."""
    if rounded:
        return {"lstm_recurrence_rounding": "bfloat16"}
    return {"mixed_precision": "bf16", "lstm_fp32_recurrence": False}


_MLM = Probe("masked-LM encoder", AutoModelForMaskedLM, left_to_right=False)
_LSTM_LM = Probe("LSTM language model", LSTMForLanguageModeling, left_to_right=True)
_LSTM_LM_BF16 = Probe(
    "LSTM language model pretrained with its recurrence in bf16", LSTMForLanguageModeling, left_to_right=True
)
_CLM = Probe("causal-LM decoder", AutoModelForCausalLM, left_to_right=True)
_RTD = Probe("replaced-token-detection encoder", AutoModel, left_to_right=False, word_probe=False)
# Saved as the masked LM whose head it trained, but never on a [MASK]: no fill-in-the-word probe.
_DBOW = Probe("document-words encoder", AutoModelForMaskedLM, left_to_right=False, word_probe=False)

_TRANSFORMER, _LSTM, _LSTM_BF16, _DECODER = (
    Pretraining("transformer", "transformer_pretrain_recipe", _MLM, "transformer_finetune_recipe"),
    Pretraining(
        "lstm", "lstm_pretrain_recipe", _LSTM_LM, "lstm_finetune_recipe", matches_tokens_of="transformer"
    ),
    Pretraining(
        "lstm_bf16",
        "lstm_pretrain_recipe",
        _LSTM_LM_BF16,
        "lstm_finetune_recipe",
        matches_tokens_of="transformer",
        bf16=True,
    ),
    Pretraining(
        "decoder", "decoder_pretrain_recipe", _CLM, "decoder_finetune_recipe", matches_tokens_of="transformer"
    ),
)

# The same encoder pretrained by other objectives, each at its own `pretrain/<name>`
# (tunekit.study.objectives); all of them are compared with `transformer_scratch`.
_TRANSFORMER_MLM40, _TRANSFORMER_RTD, _TRANSFORMER_DBOW = (
    Pretraining(
        "transformer_mlm40",
        "transformer_pretrain_recipe",
        _MLM,
        "transformer_finetune_recipe",
        recipe_changes=tuple(OBJECTIVE_CHANGES["mlm40"].items()),
    ),
    Pretraining(
        "transformer_rtd",
        "transformer_pretrain_recipe",
        _RTD,
        "transformer_finetune_recipe",
        recipe_changes=tuple(OBJECTIVE_CHANGES["rtd"].items()),
    ),
    Pretraining(
        "transformer_dbow",
        "transformer_pretrain_recipe",
        _DBOW,
        "transformer_finetune_recipe",
        recipe_changes=tuple(OBJECTIVE_CHANGES["dbow"].items()),
    ),
)

# The report, its tables and the plot legend list arms in this order.
REGISTRY: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm(
            "transformer_pretrained",
            "transformer",
            "transformer_finetune_recipe",
            _TRANSFORMER,
            PlotStyle("#08519c", "-"),
            scratch_twin="transformer_scratch",
        ),
        Arm(
            "transformer_pretrained_mlm40",
            "transformer",
            "transformer_finetune_recipe",
            _TRANSFORMER_MLM40,
            PlotStyle("#9467bd", "-"),
            scratch_twin="transformer_scratch",
        ),
        Arm(
            "transformer_pretrained_rtd",
            "transformer",
            "transformer_finetune_recipe",
            _TRANSFORMER_RTD,
            PlotStyle("#2ca02c", "-", "D"),
            scratch_twin="transformer_scratch",
        ),
        Arm(
            "transformer_pretrained_dbow",
            "transformer",
            "transformer_finetune_recipe",
            _TRANSFORMER_DBOW,
            PlotStyle("#d62728", "-", "^"),
            scratch_twin="transformer_scratch",
        ),
        Arm(
            "transformer_pretrained_lora",
            "transformer",
            "transformer_lora_recipe",
            _TRANSFORMER,
            PlotStyle("#08519c", ":"),
            lora=True,
        ),
        Arm(
            "transformer_scratch",
            "transformer",
            "transformer_scratch_recipe",
            None,
            PlotStyle("#4a98c9", "--"),
        ),
        Arm(
            "lstm_pretrained",
            "lstm",
            "lstm_finetune_recipe",
            _LSTM,
            PlotStyle("#d94801", "-"),
            scratch_twin="lstm_scratch",
        ),
        Arm("lstm_scratch", "lstm", "lstm_finetune_recipe", None, PlotStyle("#fd9a4b", "--")),
        Arm(
            "lstm_pretrained_bf16",
            "lstm",
            "lstm_finetune_recipe",
            _LSTM_BF16,
            PlotStyle("#7f2704", "-", "s"),
            bf16=True,
            fp32_twin="lstm_pretrained",
            scratch_twin="lstm_scratch_bf16",
        ),
        Arm(
            "lstm_scratch_bf16",
            "lstm",
            "lstm_finetune_recipe",
            None,
            PlotStyle("#b35806", "--", "s"),
            bf16=True,
            fp32_twin="lstm_scratch",
        ),
        Arm(
            "decoder_pretrained",
            "decoder",
            "decoder_finetune_recipe",
            _DECODER,
            PlotStyle("#2ca02c", "-"),
            scratch_twin="decoder_scratch",
        ),
        Arm("decoder_scratch", "decoder", "decoder_finetune_recipe", None, PlotStyle("#98df8a", "--")),
    )
}


def selectable() -> list[str]:
    """The arms a study recipe may name: every arm but the bf16 variants, which
    `lstm_bf16_recurrence` adds beside their fp32 twins."""
    return [arm.name for arm in REGISTRY.values() if arm.fp32_twin is None]


# What the embedded study runs unless `arms` says otherwise (`make demo` and `make study` keep to these).
DEFAULT_ARMS = ("transformer_pretrained", "transformer_scratch", "lstm_scratch", "lstm_pretrained")


def arm_named(name: str) -> Arm:
    if (arm := REGISTRY.get(name)) is None:
        raise TunekitError(f"arm: unknown {name!r}; choose from {', '.join(REGISTRY)}")
    return arm


def bf16_variant(arm: Arm) -> Arm | None:
    """The arm that differs from `arm` only by its bf16 recurrence, if one is registered."""
    return next((other for other in REGISTRY.values() if other.fp32_twin == arm.name), None)


def report_order(name: str) -> tuple[int, str]:
    """An arm's place in the report: the registry's order (arms it does not know go last)."""
    names = list(REGISTRY)
    return (names.index(name), name) if name in REGISTRY else (len(names), name)


def pretraining_named(name: str) -> Pretraining | None:
    """The pretraining saved as `pretrain/<name>` by some registered arm, or None."""
    return next(
        (arm.pretraining for arm in REGISTRY.values() if arm.pretraining and arm.pretraining.name == name),
        None,
    )


def pretraining_order(pretraining: Pretraining) -> tuple[bool, str]:
    """Pretrainings run, and are reported, token references first: the others read their budget from them."""
    return pretraining.matches_tokens_of is not None, pretraining.name
