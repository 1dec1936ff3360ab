"""The training fields (`TrainArguments`): the loop, precision, checkpoints and sharing.

Names follow transformers' `TrainingArguments` wherever one exists. Every check raises
TunekitError with one line that names the field.
"""

from dataclasses import dataclass, field

from tunekit.config.fields import clear_none_words, help_meta, require_positive
from tunekit.config.trackers import normalize_report_to
from tunekit.errors import TunekitError

# Why `padding_free` is refused (docs/design.md, "Padding-free batches are not available here").
PADDING_FREE_UNAVAILABLE = (
    "padding_free needs attn_implementation=flash_attention_2 (flash-attn is not installed) and a "
    "classifier that pools each flattened sequence; sdpa/flex ignore packed position_ids in "
    "bidirectional encoders, so fine-tuning uses group_by_length with dynamic padding instead"
)
# Fields never written to a saved recipe, a report or a pushed repository.
SECRET_FIELDS = ("hub_token",)


@dataclass
class TrainArguments:
    output_dir: str = field(
        default="outputs/run", metadata=help_meta("Where the model, metrics and checkpoints go.")
    )
    overwrite_output_dir: bool = field(
        default=False, metadata=help_meta("Allow writing into a non-empty output_dir (otherwise refused).")
    )
    seed: int = field(default=42, metadata=help_meta("Seed for init, shuffling, masking and dropout."))
    per_device_train_batch_size: int = field(
        default=32, metadata=help_meta("Batch per process per micro-step.")
    )
    per_device_eval_batch_size: int = field(default=64, metadata=help_meta("Evaluation batch per process."))
    gradient_accumulation_steps: int = field(
        default=1, metadata=help_meta("Micro-batches per optimizer step.")
    )
    learning_rate: float = field(default=5e-4, metadata=help_meta("Peak AdamW learning rate."))
    weight_decay: float = field(
        default=0.01, metadata=help_meta("AdamW weight decay (never on biases and norms).")
    )
    adam_beta1: float = field(default=0.9, metadata=help_meta("AdamW beta1."))
    adam_beta2: float = field(default=0.98, metadata=help_meta("AdamW beta2."))
    adam_epsilon: float = field(default=1e-8, metadata=help_meta("AdamW epsilon."))
    num_train_epochs: float = field(default=3.0, metadata=help_meta("Epochs, when max_steps is not set."))
    max_steps: int = field(
        default=-1, metadata=help_meta("Optimizer steps; overrides num_train_epochs when > 0.")
    )
    lr_scheduler_type: str = field(
        default="linear",
        metadata=help_meta("Decay after warmup.", choices=("linear", "cosine", "constant_with_warmup")),
    )
    warmup_ratio: float = field(
        default=0.06, metadata=help_meta("Share of optimizer steps spent warming up.")
    )
    warmup_steps: float = field(
        default=0,
        metadata=help_meta(
            "Warmup in optimizer steps (the Trainer's name); 0 < x < 1 is a share of the run, as in "
            "transformers 5. Replaces warmup_ratio when > 0."
        ),
    )
    max_grad_norm: float = field(default=1.0, metadata=help_meta("Gradient clipping norm; 0 disables."))
    mixed_precision: str | None = field(
        default="auto",
        metadata=help_meta(
            "no, fp16, bf16, or auto = what `accelerate launch` was given, else bf16 on CUDA and fp32 on "
            "CPU (see tunekit/training/precision.py for the CPU measurement).",
            choices=("auto", "no", "fp16", "bf16"),
        ),
    )
    use_cpu: bool = field(
        default=False, metadata=help_meta("Run on CPU even when a GPU is present (gloo for DDP).")
    )
    flush_denormal: bool = field(
        default=False,
        metadata=help_meta(
            "On CPU, flush subnormal floats to zero for this run (torch.set_flush_denormal): faster "
            "where activations or gradients underflow (a dbow-pretrained encoder fine-tuned 1.9x "
            "faster when set before the process's first torch operation), at the cost of results that differ "
            "in the last bits. Off by default."
        ),
    )
    eval_steps: int = field(
        default=0, metadata=help_meta("Evaluate every N optimizer steps; 0 = only at the end.")
    )
    eval_strategy: str | None = field(
        default=None,
        metadata=help_meta(
            "The Trainer's name: steps (every eval_steps), epoch (at the end of each epoch) or no (only "
            "the final evaluation); unset = eval_steps decides.",
            choices=("no", "steps", "epoch"),
        ),
    )
    logging_steps: int = field(default=10, metadata=help_meta("Log training loss every N optimizer steps."))
    save_steps: int = field(default=0, metadata=help_meta("Checkpoint every N optimizer steps; 0 = never."))
    save_strategy: str | None = field(
        default=None,
        metadata=help_meta(
            "The Trainer's name: steps (every save_steps), epoch (at the end of each epoch but the last, "
            "whose weights are the saved model) or no; unset = save_steps decides.",
            choices=("no", "steps", "epoch"),
        ),
    )
    save_total_limit: int = field(default=2, metadata=help_meta("Checkpoints kept; older ones are deleted."))
    resume_from_checkpoint: str | None = field(
        default=None, metadata=help_meta("'latest' or a checkpoint dir: continue at the exact next batch.")
    )
    load_best_model_at_end: bool = field(
        default=False,
        metadata=help_meta("Keep the weights that scored best on validation (needs eval_steps)."),
    )
    metric_for_best_model: str = field(
        default="loss", metadata=help_meta("Validation metric for model selection: loss, accuracy, f1, ...")
    )
    report_to: list[str] = field(
        default_factory=lambda: ["tensorboard"],
        metadata=help_meta(
            "Trackers, through accelerate: all, none, or any of tensorboard (the default, used when "
            "installed), wandb, mlflow, trackio, comet_ml, aim, clearml, dvclive, swanlab; each logs the "
            "metrics and the resolved recipe. Optional extras: pip install 'tunekit[wandb]'."
        ),
    )
    dataloader_num_workers: int = field(
        default=0, metadata=help_meta("Worker processes per dataloader (collation off the training process).")
    )
    dataloader_pin_memory: bool = field(
        default=True,
        metadata=help_meta(
            "On CUDA, collate into pinned host memory and copy batches to the GPU asynchronously, so "
            "the host does not wait for the previous step to finish before each copy (no effect on CPU)."
        ),
    )
    debug_host_syncs: bool = field(
        default=False,
        metadata=help_meta(
            "On CUDA, count the operations inside training steps that make the host wait for the GPU "
            "(torch.cuda.set_sync_debug_mode) and log them as host_syncs with their source lines."
        ),
    )
    save_model: bool = field(
        default=True, metadata=help_meta("Save the final model and tokenizer (a study's cells may skip it).")
    )
    disable_tqdm: bool = field(default=False, metadata=help_meta("Hide progress bars."))
    gradient_checkpointing: bool = field(
        default=False,
        metadata=help_meta(
            "Recompute each transformer layer's activations in the backward pass instead of keeping "
            "them (transformers' gradient_checkpointing_enable): less memory, about a third more compute."
        ),
    )
    torch_compile: bool = field(
        default=False,
        metadata=help_meta(
            "torch.compile the model (inductor). Packed pretraining has static shapes; fine-tuning "
            "recompiles once for a shape-generic graph (see tunekit/training/accelerator.py)."
        ),
    )
    torch_compile_backend: str = field(
        default="inductor",
        metadata=help_meta(
            "The torch.compile backend: inductor (generated kernels), or aot_eager / eager, which only "
            "capture the graph (quick to compile; used by the CPU smoke of the GPU plan and by tests).",
            choices=("inductor", "aot_eager", "eager"),
        ),
    )
    group_by_length: bool = field(
        default=True,
        metadata=help_meta(
            "Fine-tuning: batch examples of similar length (seeded per epoch, resumable, the same on "
            "every process) so little compute goes to padding. Packed pretraining blocks need none."
        ),
    )
    padding_free: bool = field(
        default=False,
        metadata=help_meta(
            "Flattened batches without padding: not available here (see docs/design.md); refused."
        ),
    )
    # Sharing on the Hub (tunekit.hub.push, tunekit.hub.card).
    push_to_hub: bool = field(
        default=False, metadata=help_meta("Push the finished run (model, tokenizer, card, recipe, results).")
    )
    hub_model_id: str | None = field(
        default=None,
        metadata=help_meta(
            "Hub repository, 'namespace/name' (a bare name goes to your namespace); unset = output dir name."
        ),
    )
    hub_private_repo: bool = field(default=False, metadata=help_meta("Create the Hub repository as private."))
    hub_token: str | None = field(
        default=None,
        metadata=help_meta("Hub token; unset = HF_TOKEN, then the saved token file. Never saved."),
    )
    hub_include_checkpoints: bool = field(
        default=False, metadata=help_meta("Also push checkpoints/ and the tensorboard runs/.")
    )
    license: str | None = field(
        default=None, metadata=help_meta("License id for the model card's metadata, e.g. apache-2.0.")
    )

    def __post_init__(self) -> None:
        clear_none_words(self, "hub_model_id", "hub_token", "license")
        self.report_to = normalize_report_to(self.report_to)
        if self.push_to_hub and not self.save_model:
            raise TunekitError("push_to_hub needs save_model true: there is no model to push")
        require_positive(
            self,
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
            "save_total_limit",
        )
        if self.learning_rate <= 0:
            raise TunekitError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise TunekitError(
                f"max_steps must be positive (or -1 to train num_train_epochs), got {self.max_steps}"
            )
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise TunekitError(
                f"num_train_epochs must be positive when max_steps is unset, got {self.num_train_epochs}"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise TunekitError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in ("eval_steps", "save_steps", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise TunekitError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.padding_free:
            raise TunekitError(PADDING_FREE_UNAVAILABLE)
        self._check_strategies()

    def _check_strategies(self) -> None:
        if self.warmup_steps < 0 or (self.warmup_steps > 1 and self.warmup_steps != int(self.warmup_steps)):
            raise TunekitError(
                f"warmup_steps must be a whole number of steps, or a share in (0, 1), got {self.warmup_steps}"
            )
        for kind in ("eval", "save"):
            strategy, steps = getattr(self, f"{kind}_strategy"), getattr(self, f"{kind}_steps")
            if strategy == "steps" and steps <= 0:
                raise TunekitError(f"{kind}_strategy=steps needs {kind}_steps > 0, got {steps}")
            if strategy in ("no", "epoch") and steps > 0:
                raise TunekitError(
                    f"{kind}_strategy={strategy} and {kind}_steps={steps} disagree; give one of them"
                )

    def warmup_steps_for(self, total_steps: int) -> int:
        """Warmup in optimizer steps: warmup_steps when set (below 1, a share of the run), else the ratio."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        return int((self.warmup_steps or self.warmup_ratio) * total_steps)
