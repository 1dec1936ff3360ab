"""The study's arm names, parsed in one place: `<architecture>_<init>[_lora][_bf16]`.

`architecture` is `transformer` (the masked-LM encoder), `decoder` (a causal-LM decoder) or
`lstm`; `init` is `pretrained` or `scratch`; `_lora` marks fine-tuning LoRA adapters (peft) on
the pretrained encoder instead of all its weights; `_bf16` marks an LSTM arm whose recurrence
runs in bf16 (`bf16_recurrence`). A pretraining is named by its architecture, plus
`_bf16` for the LSTM language model that the bf16 pretrained arm starts from.
"""

from tunekit.study.objectives import OBJECTIVE_ARMS, objective_suffix

ARMS = (
    "transformer_pretrained",
    "transformer_scratch",
    "lstm_scratch",
    "lstm_pretrained",
    "transformer_pretrained_lora",
    "decoder_pretrained",
    "decoder_scratch",
    *OBJECTIVE_ARMS,  # the transformer pretrained by other objectives (tunekit.study.objectives)
)
# What the embedded study runs unless `arms` says otherwise (`make demo` keeps to these).
DEFAULT_ARMS = ARMS[:4]
BF16_SUFFIX = "_bf16"
LORA_SUFFIX = "_lora"


def bf16_recurrence(rounded: bool) -> dict[str, object]:
    """What a `*_bf16` arm or pretraining changes in its stage recipes: bf16 autocast with the
    recurrence in bf16 or, `rounded`, no autocast and an fp32 recurrence rounded to bf16 after
    every operation (the same numerics, far cheaper on CPUs without bf16 units)."""
    if rounded:
        return {"lstm_recurrence_rounding": "bfloat16"}
    return {"mixed_precision": "bf16", "lstm_fp32_recurrence": False}


def architecture_of(name: str) -> str:
    """`transformer` or `lstm`, for an arm or a pretraining name."""
    return name.split("_")[0]


def is_bf16(name: str) -> bool:
    return name.endswith(BF16_SUFFIX)


def is_scratch(arm: str) -> bool:
    return "_scratch" in arm


def is_lora(arm: str) -> bool:
    return fp32_twin(arm).endswith(LORA_SUFFIX)


def init_of(arm: str) -> str:
    """`pretrained` or `scratch`."""
    return "scratch" if is_scratch(arm) else "pretrained"


def fp32_twin(name: str) -> str:
    """The same arm (or pretraining) with its recurrence in fp32."""
    return name.removesuffix(BF16_SUFFIX)


def pretraining_of(arm: str) -> str:
    """The pretraining a pretrained arm starts from: its architecture, plus `_bf16` for the
    bf16-recurrence LSTM, whose language model is pretrained in bf16 as well."""
    return architecture_of(arm) + objective_suffix(arm) + (BF16_SUFFIX if is_bf16(arm) else "")


def pretraining_order(name: str) -> tuple[bool, str]:
    """Pretrainings run, and are reported, transformer first: the LSTM's token budget is read from it."""
    return architecture_of(name) != "transformer", name
