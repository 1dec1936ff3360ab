"""The recipe fields: typed dataclasses that every run takes, validated on construction.
The model and data fields are here, the LoRA fields in `tunekit.config.lora`, the training
fields in `tunekit.config.training`.

Field names follow the transformers examples wherever one exists, so a user of `run_mlm.py`
or `Trainer` finds `per_device_train_batch_size`, `learning_rate`, `output_dir` where they expect.
Every check raises TunekitError with one line that names the field.
"""

from dataclasses import dataclass, field
from pathlib import Path

from tunekit.config.fields import clear_none_words, help_meta, require_positive
from tunekit.config.lora import LoraArguments
from tunekit.errors import TunekitError

ENCODER_TYPES = ("modernbert", "bert", "roberta", "distilbert")
# Causal-LM decoders: pretrained with `objective: clm`, fine-tuned with last-token pooling.
DECODER_TYPES = ("llama", "gpt2")
TRANSFORMER_TYPES = (*ENCODER_TYPES, *DECODER_TYPES)
MODEL_TYPES = (*TRANSFORMER_TYPES, "lstm")

# The `tokenizers` trainers count every distinct word they see, and distinct words keep growing with
# the text, so their memory would grow with the corpus. Measured on IMDb unsup (WordPiece 8 192,
# tokens per word on 2 084 held-out train reviews): all 66.5M characters give 1.4134, an even
# 16.6M-character spread 1.4132 and a 9.5M one 1.4141, trained 4-7x faster. Past this many
# characters, more text buys the vocabulary nothing.
TOKENIZER_TRAINING_CHARS = 16_000_000


@dataclass
class ModelArguments(LoraArguments):
    model_type: str = field(
        default="modernbert",
        metadata=help_meta("Architecture built from config.", choices=MODEL_TYPES),
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata=help_meta(
            "Initialise from this saved model dir or Hub name; unset = random init from config."
        ),
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata=help_meta("Load this tokenizer (dir or Hub name); unset = train one on the training text."),
    )
    trust_remote_code: bool = field(
        default=False,
        metadata=help_meta(
            "Allow model_name_or_path / tokenizer_name_or_path to run the Python code their repository "
            "ships (transformers' trust_remote_code)."
        ),
    )
    attn_implementation: str | None = field(
        default=None,
        metadata=help_meta(
            "A transformer's attention: eager, sdpa, flex_attention, flash_attention_2, ... (transformers' "
            "attn_implementation); unset = sdpa, with tunekit's padded-batch masks."
        ),
    )
    vocab_size: int = field(default=4096, metadata=help_meta("Vocabulary size when training a tokenizer."))
    tokenizer_training_chars: int = field(
        default=TOKENIZER_TRAINING_CHARS,
        metadata=help_meta(
            "Train a tokenizer on an even spread of about this many characters of the text (0 = all): "
            "its memory then stops growing with the corpus."
        ),
    )
    hidden_size: int = field(
        default=128, metadata=help_meta("Hidden width (LSTM: embedding and state size).")
    )
    num_hidden_layers: int = field(default=2, metadata=help_meta("Transformer or LSTM layers."))
    num_attention_heads: int = field(default=4, metadata=help_meta("Attention heads (transformers only)."))
    intermediate_size: int = field(default=256, metadata=help_meta("Feed-forward width (transformers only)."))
    max_position_embeddings: int = field(
        default=512, metadata=help_meta("Longest sequence the model accepts.")
    )
    dropout: float = field(default=0.1, metadata=help_meta("Dropout on hidden states (all model types)."))
    classifier_pooling: str | None = field(
        default=None,
        metadata=help_meta(
            "How a classifier pools tokens: modernbert mean|cls, LSTM mean|max|last; "
            "unset = the architecture's default.",
            choices=("mean", "cls", "max", "last"),
        ),
    )
    bidirectional: bool = field(default=True, metadata=help_meta("LSTM: run a bidirectional LSTM."))
    lstm_fp32_recurrence: bool = field(
        default=True,
        metadata=help_meta("LSTM: keep the recurrence in fp32 under bf16/fp16 mixed precision."),
    )
    lstm_recurrence_rounding: str | None = field(
        default=None,
        metadata=help_meta(
            "LSTM: compute the recurrence in fp32 but round every intermediate result to this 16-bit "
            "format: its numerics without autocast, on CPUs that have no bf16 units (overrides "
            "lstm_fp32_recurrence).",
            choices=("bfloat16", "float16"),
        ),
    )
    objective: str | None = field(
        default=None,
        metadata=help_meta(
            "Pretraining objective: mlm (encoders), rtd (replaced-token detection, ELECTRA: encoders), "
            "dbow (document bag of words: the mean-pooled opening window predicts the words of the "
            "rest of the document, PV-DBOW; modernbert) or clm (next-token, decoders llama/gpt2); "
            "unset = the model type's own.",
            choices=("mlm", "rtd", "dbow", "clm"),
        ),
    )
    generator_size_ratio: float = field(
        default=0.25,
        metadata=help_meta(
            "objective rtd: the generator's hidden size, feed-forward size and heads as a fraction of "
            "the discriminator's (same depth; ELECTRA's 1/4 for small models)."
        ),
    )
    rtd_discriminator_weight: float = field(
        default=50.0,
        metadata=help_meta(
            "objective rtd: lambda, the weight of the discriminator's mean per-token loss against the "
            "generator's mean MLM loss (ELECTRA's 50)."
        ),
    )
    rtd_sampling_temperature: float = field(
        default=1.0,
        metadata=help_meta(
            "objective rtd: the temperature the generator's softmax is sampled at (ELECTRA's 1). Above 1 "
            "the replacements move away from the frequent words a young generator proposes, toward "
            "rarer ones a small discriminator can learn to detect."
        ),
    )

    def __post_init__(self) -> None:
        clear_none_words(
            self,
            "model_name_or_path",
            "tokenizer_name_or_path",
            "objective",
            "attn_implementation",
            "lstm_recurrence_rounding",
        )
        require_positive(
            self,
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        )
        if self.tokenizer_training_chars < 0:
            raise TunekitError(
                "tokenizer_training_chars must be 0 (all the text) or positive, "
                f"got {self.tokenizer_training_chars}"
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
        if not 0.0 < self.generator_size_ratio <= 1.0:
            raise TunekitError(f"generator_size_ratio must be in (0, 1], got {self.generator_size_ratio}")
        if not self.rtd_sampling_temperature > 0:
            raise TunekitError(
                f"rtd_sampling_temperature must be positive, got {self.rtd_sampling_temperature}"
            )
        if self.rtd_discriminator_weight <= 0:
            raise TunekitError(
                f"rtd_discriminator_weight must be positive, got {self.rtd_discriminator_weight}"
            )
        natural = "clm" if self.is_decoder else "mlm"
        if self.objective == "rtd" and self.model_type not in ENCODER_TYPES:
            raise TunekitError(
                f"objective=rtd needs model_type {' or '.join(ENCODER_TYPES)}, got {self.model_type}"
            )
        if self.objective == "dbow" and self.model_type != "modernbert":
            raise TunekitError(
                "objective=dbow needs model_type modernbert (it reads the window through ModernBERT's "
                f"mean pooling and masked-LM head), got {self.model_type}"
            )
        if self.objective not in (None, "rtd", "dbow") and not self.is_lstm and self.objective != natural:
            kinds = DECODER_TYPES if self.objective == "clm" else ENCODER_TYPES
            raise TunekitError(
                f"objective={self.objective} needs model_type {' or '.join(kinds)}, got {self.model_type}"
            )
        if self.attn_implementation is not None and self.is_lstm:
            raise TunekitError(
                "attn_implementation: the LSTM has no attention; leave it unset for model_type lstm"
            )
        if self.use_lora and self.is_lstm:
            raise TunekitError(
                "use_lora: peft has no LoRA for nn.LSTM; LoRA is available for the transformer model types"
            )
        self.check_lora_fields()

    @property
    def is_lstm(self) -> bool:
        return self.model_type == "lstm"

    @property
    def is_decoder(self) -> bool:
        return self.model_type in DECODER_TYPES

    @property
    def is_replaced_token_detection(self) -> bool:
        return self.objective == "rtd"

    @property
    def is_document_words(self) -> bool:
        return self.objective == "dbow"


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None,
        metadata=help_meta(
            "Hub dataset name, or 'synthetic' for the built-in corpus. Unset = synthetic "
            "unless data files are given."
        ),
    )
    dataset_config_name: str | None = field(default=None, metadata=help_meta("Hub dataset config name."))
    train_file: list[str] | None = field(
        default=None,
        metadata=help_meta("Local training file(s): csv, json/jsonl, parquet or txt, gzip allowed."),
    )
    validation_file: str | None = field(default=None, metadata=help_meta("Local validation file."))
    test_file: str | None = field(default=None, metadata=help_meta("Local test file."))
    train_split: str = field(
        default="train",
        metadata=help_meta(
            "Split(s) to train on; '+' joins splits, e.g. 'train+unsupervised' for pretraining."
        ),
    )
    validation_split: str | None = field(
        default="validation", metadata=help_meta("Validation split name; carved from train when missing.")
    )
    test_split: str | None = field(default="test", metadata=help_meta("Test split name (classification)."))
    text_column: str = field(default="text", metadata=help_meta("Column holding the text."))
    label_column: str = field(default="label", metadata=help_meta("Column holding the class label."))
    label_names: list[str] | None = field(
        default=None,
        metadata=help_meta(
            "Class names for integer labels 0..K-1 (e.g. negative positive); shown by pipeline()."
        ),
    )
    validation_split_percentage: float = field(
        default=10.0, metadata=help_meta("Percent of train carved (seeded) as validation when there is none.")
    )
    max_train_samples: int | None = field(
        default=None,
        metadata=help_meta(
            "Label budget: a class-stratified, seeded subset of the training set; when pretraining, "
            "a seeded subset of the training documents."
        ),
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata=help_meta("Cap on validation examples (and on test, when max_test_samples is unset)."),
    )
    max_test_samples: int | None = field(
        default=None,
        metadata=help_meta(
            "A fixed, class-stratified test subset of this size: the same examples for every run."
        ),
    )
    max_seq_length: int = field(
        default=128,
        metadata=help_meta("Pretraining block length / fine-tuning truncation length, in tokens."),
    )
    exclude_test_texts: bool = field(
        default=True,
        metadata=help_meta(
            "Pretraining: drop texts that also appear in the test split/test_file (no leakage)."
        ),
    )
    mlm_probability: float = field(default=0.15, metadata=help_meta("Share of tokens masked for MLM."))
    synthetic_seed: int = field(default=0, metadata=help_meta("Seed of the built-in synthetic corpus."))
    preprocessing_num_workers: int | None = field(
        default=None, metadata=help_meta("Processes for datasets.map.")
    )
    overwrite_cache: bool = field(default=False, metadata=help_meta("Recompute cached tokenized datasets."))

    def __post_init__(self) -> None:
        clear_none_words(
            self,
            "dataset_name",
            "dataset_config_name",
            "validation_split",
            "test_split",
            "validation_file",
            "test_file",
        )
        require_positive(self, "max_seq_length")
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples"):
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
        # Data files win over any dataset_name (load_raw reads them first), the embedded one included.
        return not self.train_file and self.dataset_name in ("synthetic", None)
