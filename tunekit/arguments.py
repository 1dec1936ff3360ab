"""The recipe fields: typed dataclasses that every run takes, validated on construction.

Field names follow the transformers examples wherever one exists, so a user of `run_mlm.py`
or `Trainer` finds `per_device_train_batch_size`, `learning_rate`, `output_dir` where they expect.
Every check raises TunekitError with one line that names the field.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import TunekitError

ENCODER_TYPES = ("modernbert", "bert", "roberta", "distilbert")
# Causal-LM decoders: pretrained with `objective: clm`, fine-tuned with last-token pooling.
DECODER_TYPES = ("llama", "gpt2")
TRANSFORMER_TYPES = (*ENCODER_TYPES, *DECODER_TYPES)
MODEL_TYPES = (*TRANSFORMER_TYPES, "lstm")
# Why `padding_free` is refused (README, "Padding-free batches are not available here").
PADDING_FREE_UNAVAILABLE = (
    "padding_free needs attn_implementation=flash_attention_2 (flash-attn is not installed) and a "
    "classifier that pools each flattened sequence; sdpa/flex ignore packed position_ids in "
    "bidirectional encoders, so fine-tuning uses group_by_length with dynamic padding instead"
)
# peft's LoraConfig names for the keys of a recipe's `peft:` section, and the flat fields they fill.
PEFT_SECTION_KEYS = {
    "r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "lora_target_modules",
    "modules_to_save": "lora_modules_to_save",
}
# Fields never written to a saved recipe, a report or a pushed repository.
SECRET_FIELDS = ("hub_token",)


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


@dataclass
class ModelArguments:
    model_type: str = field(
        default="modernbert",
        metadata=_help("Architecture built from config.", choices=MODEL_TYPES),
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata=_help("Initialise from this saved model dir or Hub name; unset = random init from config."),
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata=_help("Load this tokenizer (dir or Hub name); unset = train one on the training text."),
    )
    vocab_size: int = field(default=4096, metadata=_help("Vocabulary size when training a tokenizer."))
    hidden_size: int = field(default=128, metadata=_help("Hidden width (LSTM: embedding and state size)."))
    num_hidden_layers: int = field(default=2, metadata=_help("Transformer or LSTM layers."))
    num_attention_heads: int = field(default=4, metadata=_help("Attention heads (transformers only)."))
    intermediate_size: int = field(default=256, metadata=_help("Feed-forward width (transformers only)."))
    max_position_embeddings: int = field(default=512, metadata=_help("Longest sequence the model accepts."))
    dropout: float = field(default=0.1, metadata=_help("Dropout on hidden states (all model types)."))
    classifier_pooling: str | None = field(
        default=None,
        metadata=_help(
            "How a classifier pools tokens: modernbert mean|cls, LSTM mean|max|last; "
            "unset = the architecture's default.",
            choices=("mean", "cls", "max", "last"),
        ),
    )
    bidirectional: bool = field(default=True, metadata=_help("LSTM: run a bidirectional LSTM."))
    lstm_fp32_recurrence: bool = field(
        default=True,
        metadata=_help("LSTM: keep the recurrence in fp32 under bf16/fp16 mixed precision."),
    )
    objective: str | None = field(
        default=None,
        metadata=_help(
            "Pretraining objective: mlm (encoders) or clm (next-token, decoders llama/gpt2); "
            "unset = the model type's own.",
            choices=("mlm", "clm"),
        ),
    )
    use_lora: bool = field(
        default=False,
        metadata=_help("Fine-tune LoRA adapters (peft) instead of all weights; a `peft:` section sets it."),
    )
    lora_r: int = field(default=8, metadata=_help("LoRA rank (peft: r)."))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling numerator (peft: lora_alpha)."))
    lora_dropout: float = field(
        default=0.05, metadata=_help("Dropout on the LoRA input (peft: lora_dropout).")
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata=_help(
            "Module names that get adapters (peft: target_modules); unset = tunekit's per-type default."
        ),
    )
    lora_modules_to_save: list[str] | None = field(
        default=None,
        metadata=_help(
            "Modules trained in full and saved with the adapter (peft: modules_to_save); unset = per-type "
            "default. peft always adds the classifier."
        ),
    )
    lora_base_model_id: str | None = field(
        default=None,
        metadata=_help(
            "Hub id written as the adapter's base_model_name_or_path; unset = the hub_model_id that "
            "model_name_or_path's results.json records, else model_name_or_path itself."
        ),
    )
    merge_adapter: bool = field(
        default=False,
        metadata=_help("LoRA: also save the adapter merged into the model (merge_and_unload) under merged/."),
    )

    def __post_init__(self) -> None:
        _none_words(self, "model_name_or_path", "tokenizer_name_or_path", "objective", "lora_base_model_id")
        _positive(
            self,
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        )
        if not 0.0 <= self.dropout < 1.0:
            raise TunekitError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.model_type in TRANSFORMER_TYPES and self.hidden_size % self.num_attention_heads:
            raise TunekitError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        allowed = {"lstm": ("mean", "max", "last"), "modernbert": ("mean", "cls")}.get(
            self.model_type, ("last",) if self.is_decoder else ("cls",)
        )
        if self.classifier_pooling is not None and self.classifier_pooling not in allowed:
            raise TunekitError(
                f"classifier_pooling={self.classifier_pooling!r} is not available for model_type "
                f"{self.model_type} (choose from {', '.join(allowed)})"
            )

        self._check_objective_and_lora()

    def _check_objective_and_lora(self) -> None:
        natural = "clm" if self.is_decoder else "mlm"
        if self.objective is not None and not self.is_lstm and self.objective != natural:
            kinds = DECODER_TYPES if self.objective == "clm" else ENCODER_TYPES
            raise TunekitError(
                f"objective={self.objective} needs model_type {' or '.join(kinds)}, got {self.model_type}"
            )
        if self.use_lora and self.is_lstm:
            raise TunekitError(
                "use_lora: peft has no LoRA for nn.LSTM; LoRA is available for the transformer model types"
            )
        _positive(self, "lora_r", "lora_alpha")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise TunekitError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")

    @property
    def is_lstm(self) -> bool:
        return self.model_type == "lstm"

    @property
    def is_decoder(self) -> bool:
        return self.model_type in DECODER_TYPES


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None,
        metadata=_help(
            "Hub dataset name, or 'synthetic' for the built-in corpus. Unset = synthetic "
            "unless data files are given."
        ),
    )
    dataset_config_name: str | None = field(default=None, metadata=_help("Hub dataset config name."))
    train_file: list[str] | None = field(
        default=None, metadata=_help("Local training file(s): csv, json/jsonl, parquet or txt, gzip allowed.")
    )
    validation_file: str | None = field(default=None, metadata=_help("Local validation file."))
    test_file: str | None = field(default=None, metadata=_help("Local test file."))
    train_split: str = field(
        default="train",
        metadata=_help("Split(s) to train on; '+' joins splits, e.g. 'train+unsupervised' for pretraining."),
    )
    validation_split: str | None = field(
        default="validation", metadata=_help("Validation split name; carved from train when missing.")
    )
    test_split: str | None = field(default="test", metadata=_help("Test split name (classification)."))
    text_column: str = field(default="text", metadata=_help("Column holding the text."))
    label_column: str = field(default="label", metadata=_help("Column holding the class label."))
    label_names: list[str] | None = field(
        default=None,
        metadata=_help(
            "Class names for integer labels 0..K-1 (e.g. negative positive); shown by pipeline()."
        ),
    )
    validation_split_percentage: float = field(
        default=10.0, metadata=_help("Percent of train carved (seeded) as validation when there is none.")
    )
    max_train_samples: int | None = field(
        default=None, metadata=_help("Label budget: a class-stratified, seeded subset of the training set.")
    )
    max_eval_samples: int | None = field(default=None, metadata=_help("Cap on validation/test examples."))
    max_seq_length: int = field(
        default=128, metadata=_help("Pretraining block length / fine-tuning truncation length, in tokens.")
    )
    exclude_test_texts: bool = field(
        default=True,
        metadata=_help("Pretraining: drop texts that also appear in the test split/test_file (no leakage)."),
    )
    mlm_probability: float = field(default=0.15, metadata=_help("Share of tokens masked for MLM."))
    synthetic_seed: int = field(default=0, metadata=_help("Seed of the built-in synthetic corpus."))
    preprocessing_num_workers: int | None = field(default=None, metadata=_help("Processes for datasets.map."))
    overwrite_cache: bool = field(default=False, metadata=_help("Recompute cached tokenized datasets."))

    def __post_init__(self) -> None:
        _none_words(
            self,
            "dataset_name",
            "dataset_config_name",
            "validation_split",
            "test_split",
            "validation_file",
            "test_file",
        )
        _positive(self, "max_seq_length")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise TunekitError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.validation_split_percentage < 100.0:
            raise TunekitError(
                f"validation_split_percentage must be in (0, 100), got {self.validation_split_percentage}"
            )
        if not 0.0 < self.mlm_probability < 1.0:
            raise TunekitError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        for name in ("validation_file", "test_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).exists():
                raise TunekitError(f"{name}: no such file {path}")
        for path in self.train_file or []:
            if not Path(path).exists():
                raise TunekitError(f"train_file: no such file {path}")

    @property
    def uses_synthetic(self) -> bool:
        return self.dataset_name == "synthetic" or (self.dataset_name is None and not self.train_file)


@dataclass
class TrainArguments:
    output_dir: str = field(
        default="outputs/run", metadata=_help("Where the model, metrics and checkpoints go.")
    )
    overwrite_output_dir: bool = field(
        default=False, metadata=_help("Allow writing into a non-empty output_dir (otherwise refused).")
    )
    seed: int = field(default=42, metadata=_help("Seed for init, shuffling, masking and dropout."))
    per_device_train_batch_size: int = field(default=32, metadata=_help("Batch per process per micro-step."))
    per_device_eval_batch_size: int = field(default=64, metadata=_help("Evaluation batch per process."))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("Micro-batches per optimizer step."))
    learning_rate: float = field(default=5e-4, metadata=_help("Peak AdamW learning rate."))
    weight_decay: float = field(
        default=0.01, metadata=_help("AdamW weight decay (never on biases and norms).")
    )
    adam_beta1: float = field(default=0.9, metadata=_help("AdamW beta1."))
    adam_beta2: float = field(default=0.98, metadata=_help("AdamW beta2."))
    adam_epsilon: float = field(default=1e-8, metadata=_help("AdamW epsilon."))
    num_train_epochs: float = field(default=3.0, metadata=_help("Epochs, when max_steps is not set."))
    max_steps: int = field(
        default=-1, metadata=_help("Optimizer steps; overrides num_train_epochs when > 0.")
    )
    lr_scheduler_type: str = field(
        default="linear",
        metadata=_help("Decay after warmup.", choices=("linear", "cosine", "constant_with_warmup")),
    )
    warmup_ratio: float = field(default=0.06, metadata=_help("Share of optimizer steps spent warming up."))
    max_grad_norm: float = field(default=1.0, metadata=_help("Gradient clipping norm; 0 disables."))
    mixed_precision: str | None = field(
        default="auto",
        metadata=_help(
            "no, fp16, bf16, or auto = what `accelerate launch` was given, else bf16 on CUDA and fp32 on "
            "CPU (see tunekit/optim.py for the CPU measurement).",
            choices=("auto", "no", "fp16", "bf16"),
        ),
    )
    use_cpu: bool = field(
        default=False, metadata=_help("Run on CPU even when a GPU is present (gloo for DDP).")
    )
    eval_steps: int = field(
        default=0, metadata=_help("Evaluate every N optimizer steps; 0 = only at the end.")
    )
    logging_steps: int = field(default=10, metadata=_help("Log training loss every N optimizer steps."))
    save_steps: int = field(default=0, metadata=_help("Checkpoint every N optimizer steps; 0 = never."))
    save_total_limit: int = field(default=2, metadata=_help("Checkpoints kept; older ones are deleted."))
    resume_from_checkpoint: str | None = field(
        default=None, metadata=_help("'latest' or a checkpoint dir: continue at the exact next batch.")
    )
    load_best_model_at_end: bool = field(
        default=False, metadata=_help("Keep the weights that scored best on validation (needs eval_steps).")
    )
    metric_for_best_model: str = field(
        default="loss", metadata=_help("Validation metric for model selection: loss, accuracy, f1, ...")
    )
    report_to: str = field(
        default="tensorboard",
        metadata=_help(
            "Tracker for accelerate: tensorboard (used when installed) or none.",
            choices=("tensorboard", "none"),
        ),
    )
    dataloader_num_workers: int = field(
        default=0, metadata=_help("Worker processes per dataloader (collation off the training process).")
    )
    save_model: bool = field(
        default=True, metadata=_help("Save the final model and tokenizer (a study's cells may skip it).")
    )
    disable_tqdm: bool = field(default=False, metadata=_help("Hide progress bars."))
    torch_compile: bool = field(
        default=False,
        metadata=_help(
            "torch.compile the model (inductor). Packed pretraining has static shapes; fine-tuning "
            "recompiles once for a shape-generic graph (see tunekit/optim.py)."
        ),
    )
    group_by_length: bool = field(
        default=True,
        metadata=_help(
            "Fine-tuning: batch examples of similar length (seeded per epoch, resumable, the same on "
            "every process) so little compute goes to padding. Packed pretraining blocks need none."
        ),
    )
    padding_free: bool = field(
        default=False,
        metadata=_help("Flattened batches without padding: not available here (see README); refused."),
    )
    # Sharing on the Hub (tunekit.hub, tunekit.card).
    push_to_hub: bool = field(
        default=False, metadata=_help("Push the finished run (model, tokenizer, card, recipe, results).")
    )
    hub_model_id: str | None = field(
        default=None,
        metadata=_help(
            "Hub repository, 'namespace/name' (a bare name goes to your namespace); unset = output dir name."
        ),
    )
    hub_private_repo: bool = field(default=False, metadata=_help("Create the Hub repository as private."))
    hub_token: str | None = field(
        default=None,
        metadata=_help("Hub token; unset = HF_TOKEN, then the saved token file. Never saved."),
    )
    hub_include_checkpoints: bool = field(
        default=False, metadata=_help("Also push checkpoints/ and the tensorboard runs/.")
    )
    license: str | None = field(
        default=None, metadata=_help("License id for the model card's metadata, e.g. apache-2.0.")
    )

    def __post_init__(self) -> None:
        _none_words(self, "hub_model_id", "hub_token", "license")
        if self.push_to_hub and not self.save_model:
            raise TunekitError("push_to_hub needs save_model true: there is no model to push")
        _positive(
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


def _none_words(obj: object, *names: str) -> None:
    """`--field none` (or `""`, or `field: null` in YAML) clears an optional text field."""
    for name in names:
        if getattr(obj, name) in ("", "none", "None", "null"):
            setattr(obj, name, None)


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise TunekitError(f"{name} must be positive, got {value}")
