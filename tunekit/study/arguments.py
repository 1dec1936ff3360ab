"""The study's recipe: which arms, label budgets and seeds, and which stage recipes they run."""

from dataclasses import dataclass, field

from tunekit.errors import TunekitError
from tunekit.study.arms import ARMS, DEFAULT_ARMS, fp32_twin


@dataclass
class StudyArguments:
    output_dir: str = field(
        default="outputs/tiny/study", metadata={"help": "Where cells, report and plot go."}
    )
    arms: list[str] = field(
        default_factory=lambda: list(DEFAULT_ARMS), metadata={"help": f"Arms to run: {ARMS}."}
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
        unknown = [arm for arm in self.arms if arm not in ARMS]
        if unknown or not self.arms:
            raise TunekitError(f"arms: unknown {unknown or 'empty list'}; choose from {', '.join(ARMS)}")
        for budget in self.budgets:
            if budget != "all" and not (budget.isdigit() and int(budget) > 0):
                raise TunekitError(f"budgets: {budget!r} is neither a positive number nor 'all'")
        if any(budget <= 0 for budget in self.pretrain_budgets):
            raise TunekitError(f"pretrain_budgets: {self.pretrain_budgets} must be positive numbers")
        if stray := [arm for arm in self.pretrain_budget_arms if arm not in self.arms or "_scratch" in arm]:
            raise TunekitError(f"pretrain_budget_arms: {stray} are not pretrained arms of this study")
        if self.pretrain_budget_unit not in ("steps", "tokens", "flops"):
            raise TunekitError(
                f"pretrain_budget_unit: {self.pretrain_budget_unit!r} is not 'steps', 'tokens' or 'flops'"
            )
        if not self.seeds:
            raise TunekitError("seeds: give at least one seed")
        for entry in self.cell_overrides:
            arm, budget, _ = _split_cell_override(entry)
            if arm not in (*self.arms, "*") or budget not in (*self.budgets, "*"):
                raise TunekitError(
                    f"cell_overrides: {entry!r} names no cell of this study "
                    f"(arms {self.arms}, budgets {self.budgets})"
                )

    def cell_flags(self, arm: str, budget: str) -> str:
        """The flags of every cell_overrides entry that matches this arm and label budget, in order.
        A bf16-recurrence arm takes its fp32 arm's entries: the two differ in precision alone."""
        flags = []
        for entry in self.cell_overrides:
            entry_arm, entry_budget, entry_flags = _split_cell_override(entry)
            if entry_arm in (arm, fp32_twin(arm), "*") and entry_budget in (budget, "*"):
                flags.append(entry_flags)
        return " ".join(flags)

    def is_current(self, record: dict) -> bool:
        """Whether a recorded cell (a result or a divergence) ran under this study's cell_overrides."""
        return record.get("cell_flags", "") == self.cell_flags(record["arm"], str(record["budget"]))

    def overrides_for(self, arm: str, budget: str) -> str:
        """What a fine-tuning cell adds to its recipe: finetune_overrides, then its cell_flags."""
        return " ".join(flags for flags in (self.finetune_overrides, self.cell_flags(arm, budget)) if flags)


def _split_cell_override(entry: str) -> tuple[str, str, str]:
    cell, colon, flags = entry.partition(":")
    arm, at, budget = cell.strip().partition("@")
    if not (colon and at and arm and budget and flags.strip().startswith("--")):
        raise TunekitError(f"cell_overrides: {entry!r} is not 'ARM@BUDGET: --flag value ...'")
    return arm, budget.strip(), flags.strip()
