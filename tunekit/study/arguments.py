"""The study's recipe: which arms, label budgets and seeds, and which stage recipes they run.

Its override strings are split into flags once, here; each stage parses its flags once, into its
typed recipe (tunekit.study.stages.stage_args).
"""

import shlex
from dataclasses import dataclass, field

from tunekit.errors import TunekitError
from tunekit.study.arms import DEFAULT_ARMS, REGISTRY, Arm, selectable


@dataclass(frozen=True)
class CellOverride:
    """One cell_overrides entry, 'ARM@BUDGET: --flag value ...' (ARM or BUDGET may be '*')."""

    arm: str
    budget: str
    flags: str  # as written: results.jsonl records it, and a changed one runs its cells again
    argv: tuple[str, ...]

    @classmethod
    def parse(cls, entry: str) -> "CellOverride":
        cell, colon, flags = entry.partition(":")
        arm, at, budget = cell.strip().partition("@")
        if not (colon and at and arm and budget and flags.strip().startswith("--")):
            raise TunekitError(f"cell_overrides: {entry!r} is not 'ARM@BUDGET: --flag value ...'")
        return cls(arm, budget.strip(), flags.strip(), split_flags("cell_overrides", flags))

    def matches(self, arm: Arm, budget: str) -> bool:
        """A bf16-recurrence arm takes its fp32 arm's entries: the two differ in precision alone."""
        return self.arm in (arm.name, arm.fp32_twin, "*") and self.budget in (budget, "*")


def is_label_budget(text: str) -> bool:
    """A label budget as recipes write it: a positive number of examples, or 'all'."""
    return text == "all" or (text.isdigit() and int(text) > 0)


@dataclass
class StudyArguments:
    output_dir: str = field(
        default="outputs/tiny/study", metadata={"help": "Where cells, report and plot go."}
    )
    arms: list[str] = field(
        default_factory=lambda: list(DEFAULT_ARMS),
        metadata={"help": f"Arms to run: {tuple(selectable())} (tunekit.study.arms)."},
    )
    budgets: list[str] = field(
        default_factory=lambda: ["100", "1000", "all"],
        metadata={"help": "Label budgets: numbers of labeled training examples, or 'all'."},
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2], metadata={"help": "Fine-tuning seeds per cell."}
    )
    transformer_pretrain_recipe: str = field(
        default="recipes/tiny/pretrain.yaml", metadata={"help": "MLM recipe."}
    )
    lstm_pretrain_recipe: str = field(
        default="recipes/tiny/lstm_pretrain.yaml", metadata={"help": "LSTM LM recipe."}
    )
    transformer_finetune_recipe: str = field(
        default="recipes/tiny/finetune_pretrained.yaml",
        metadata={"help": "Fine-tuning recipe, pretrained arm."},
    )
    transformer_scratch_recipe: str = field(
        default="recipes/tiny/finetune_scratch.yaml", metadata={"help": "Fine-tuning recipe, scratch arm."}
    )
    lstm_finetune_recipe: str = field(
        default="recipes/tiny/lstm.yaml", metadata={"help": "LSTM fine-tuning."}
    )
    match_lstm_pretraining_tokens: bool = field(
        default=True,
        metadata={
            "help": "Give the LSTM LM (and the decoder) as many pretraining tokens as the transformer got."
        },
    )
    lstm_bf16_recurrence: bool = field(
        default=False,
        metadata={
            "help": "Also run the LSTM arms under bf16 autocast with the recurrence in bf16 (*_bf16 arms)."
        },
    )
    lstm_bf16_rounded: bool = field(
        default=False,
        metadata={
            "help": "The *_bf16 arms round an fp32 recurrence to bf16 after every operation, without "
            "autocast: bf16 numerics at a fraction of a real bf16 LSTM's cost on CPUs without bf16 units."
        },
    )
    stage_overrides: str = field(
        default="", metadata={"help": "Extra '--field value' flags for every stage, e.g. '--max_steps 5'."}
    )
    pretrain_overrides: str = field(
        default="",
        metadata={"help": "Extra flags for the pretraining stages and the tokenizer (e.g. local files)."},
    )
    finetune_overrides: str = field(default="", metadata={"help": "Extra flags for every fine-tuning cell."})
    cell_overrides: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra flags for some cells, after finetune_overrides: 'ARM@BUDGET: --flag value', "
            "ARM or BUDGET may be '*'; e.g. 'transformer_pretrained@1000: --learning_rate 1e-3' for a "
            "learning rate chosen per label budget on validation."
        },
    )
    min_finetune_steps: int = field(
        default=0, metadata={"help": "Small budgets train at least this many optimizer steps (epochs grow)."}
    )
    report_only: bool = field(
        default=False, metadata={"help": "Only rebuild report.md and the plot from results.jsonl."}
    )
    pretrain_budgets: list[int] = field(
        default_factory=list,
        metadata={
            "help": "Pretraining-budget axis, e.g. [500, 1000, 2000]: each pretraining runs once per budget "
            "(a separate run of that length) and every pretrained cell runs from each; "
            "empty: the recipe's length."
        },
    )
    pretrain_budget_arms: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Pretrained arms on the pretraining-budget axis (with every arm sharing their "
            "pretraining); the others pretrain once, at their recipe's length. Empty: every pretrained arm."
        },
    )
    pretrain_budget_unit: str = field(
        default="steps",
        metadata={
            "help": "Unit of pretrain_budgets: 'steps' (optimizer steps), 'tokens', or 'flops' (training "
            "FLOPs, so objectives of different cost per token compare at equal compute)."
        },
    )

    decoder_pretrain_recipe: str = field(
        default="recipes/tiny/clm_pretrain.yaml", metadata={"help": "Causal-LM recipe (decoder arms)."}
    )
    decoder_finetune_recipe: str = field(
        default="recipes/tiny/decoder_finetune.yaml",
        metadata={"help": "Decoder fine-tuning recipe, pretrained and scratch arms."},
    )
    transformer_lora_recipe: str = field(
        default="recipes/tiny/finetune_lora.yaml",
        metadata={"help": "LoRA fine-tuning recipe (transformer_pretrained_lora)."},
    )
    # Sharing on the Hub (tunekit.study.publish): each arm's best cell, by validation accuracy.
    push_to_hub: bool = field(
        default=False,
        metadata={"help": "Save every cell's model and push each arm's best (by validation accuracy)."},
    )
    hub_model_id: str | None = field(
        default=None,
        metadata={"help": "Repository prefix: each arm goes to '<prefix>-<arm>'; unset = output dir name."},
    )
    hub_private_repo: bool = field(default=False, metadata={"help": "Create the repositories as private."})
    hub_token: str | None = field(
        default=None,
        metadata={"help": "Hub token; unset = HF_TOKEN, then the saved token file. Never saved."},
    )

    def __post_init__(self) -> None:
        for name in ("hub_model_id", "hub_token"):
            if getattr(self, name) in ("", "none", "None", "null"):
                setattr(self, name, None)
        unknown = [arm for arm in self.arms if arm not in selectable()]
        if unknown or not self.arms:
            raise TunekitError(
                f"arms: unknown {unknown or 'empty list'}; choose from {', '.join(selectable())}"
            )
        for budget in self.budgets:
            if not is_label_budget(budget):
                raise TunekitError(f"budgets: {budget!r} is neither a positive number nor 'all'")
        if any(budget <= 0 for budget in self.pretrain_budgets):
            raise TunekitError(f"pretrain_budgets: {self.pretrain_budgets} must be positive numbers")
        # Arms a recipe names but this run leaves out (--arms picks a subset) are not an error: their
        # entries here and in cell_overrides apply to no cell. Names that are no arm at all are.
        if stray := [
            arm
            for arm in self.pretrain_budget_arms
            if arm not in REGISTRY or REGISTRY[arm].pretraining is None
        ]:
            raise TunekitError(f"pretrain_budget_arms: {stray} are not pretrained arms")
        if self.pretrain_budget_unit not in ("steps", "tokens", "flops"):
            raise TunekitError(
                f"pretrain_budget_unit: {self.pretrain_budget_unit!r} is not 'steps', 'tokens' or 'flops'"
            )
        if not self.seeds:
            raise TunekitError("seeds: give at least one seed")
        # Split once: every cell, result and divergence record reads these.
        self.parsed_cell_overrides = tuple(CellOverride.parse(entry) for entry in self.cell_overrides)
        for entry, override in zip(self.cell_overrides, self.parsed_cell_overrides, strict=True):
            if override.arm not in (*selectable(), "*") or not (
                override.budget == "*" or is_label_budget(override.budget)
            ):
                raise TunekitError(
                    f"cell_overrides: {entry!r} names no arm and label budget "
                    f"(arms: {', '.join(selectable())}; budgets: a number, 'all' or '*')"
                )
        self.stage_argv = split_flags("stage_overrides", self.stage_overrides)
        self.pretrain_argv = (*self.stage_argv, *split_flags("pretrain_overrides", self.pretrain_overrides))
        self.finetune_argv = (*self.stage_argv, *split_flags("finetune_overrides", self.finetune_overrides))

    def overrides_of(self, arm: Arm, budget: str) -> tuple[CellOverride, ...]:
        """The cell_overrides entries that match this arm and label budget, in order."""
        return tuple(override for override in self.parsed_cell_overrides if override.matches(arm, budget))

    def is_current(self, record: dict) -> bool:
        """Whether a recorded cell (a result or a divergence) ran under this study's cell_overrides."""
        arm = REGISTRY.get(record["arm"])
        flags = cell_flags(self.overrides_of(arm, str(record["budget"]))) if arm else ""
        return record.get("cell_flags", "") == flags


def split_flags(name: str, text: str) -> tuple[str, ...]:
    """'--field value ...' as the argv a stage recipe is parsed with (shell quoting honoured)."""
    try:
        return tuple(shlex.split(text))
    except ValueError as error:  # an unbalanced quote
        raise TunekitError(f"{name}: {text!r}: {error}") from None


def cell_flags(overrides: tuple[CellOverride, ...]) -> str:
    """The flags of a cell's cell_overrides as results.jsonl records them."""
    return " ".join(override.flags for override in overrides)
