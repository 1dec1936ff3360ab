"""Benchmark presets: which encoders, sequence lengths, batches, precisions and step counts to time."""

from dataclasses import dataclass, replace

from tunekit.errors import TunekitError


@dataclass(frozen=True)
class EncoderSize:
    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int  # of the WordPiece trained for the run

    @property
    def label(self) -> str:
        return f"{self.num_hidden_layers}x{self.hidden_size}"


@dataclass(frozen=True)
class Case:
    """One comparison: the same model, data, sequence length, batch and precision on every system."""

    task: str  # "pretraining" (MLM on packed blocks) or "finetuning" (classification, IMDb length)
    encoder: EncoderSize
    seq_len: int  # block size, or the truncation length for fine-tuning
    batch_size: int
    precision: str  # "no" (fp32), "bf16" or "fp16"
    compile: bool
    warmup_steps: int
    steps: int
    compile_backend: str = "inductor"  # torch.compile's backend, for both systems
    # DataLoader worker processes, the same for both systems: with them, collation (tokenized rows to
    # padded tensors, MLM masking) runs off the training process and overlaps the step.
    dataloader_workers: int = 0


@dataclass(frozen=True)
class Preset:
    name: str
    data: str  # "imdb" (the local IMDb copy) or "synthetic" (tunekit's built-in corpus)
    pretraining_texts: int  # the first N unlabeled reviews
    finetuning_examples: int  # a seeded sample of labeled reviews (a multiple of every batch size)
    cases: tuple[Case, ...]
    validation_texts: int = 32  # scored only after the timed window; small, so it costs little


# The BERT of the CPU measurement, the IMDb recipe's encoder and a BERT-base-size encoder.
SMALL_BERT = EncoderSize("small", 256, 4, 4, 1024, 8192)
IMDB_RECIPE = EncoderSize("imdb-recipe", 256, 4, 4, 1024, 16384)
BERT_BASE = EncoderSize("bert-base", 768, 12, 12, 3072, 30522)
TINY = EncoderSize("tiny", 32, 1, 2, 64, 300)


def finetuning_case(
    encoder: EncoderSize, seq_len: int, batch_size: int, precision: str, examples: int, workers: int = 0
) -> Case:
    """Fine-tuning warms up for one epoch and times the second, whole.

    A whole epoch is the honest window when batch lengths vary: a length-grouped sampler orders
    batches longest first, so any shorter window would favour or penalise it by where it falls.
    """
    if examples % batch_size:
        raise TunekitError(
            f"fine-tuning examples ({examples}) must be a multiple of the batch ({batch_size})"
        )
    epoch = examples // batch_size
    return Case(
        "finetuning",
        encoder,
        seq_len,
        batch_size,
        precision,
        False,
        warmup_steps=epoch,
        steps=epoch,
        dataloader_workers=workers,
    )


# The device has 16 cores; 4 workers per side keep collation off the training process (issue 29).
GPU_DATALOADER_WORKERS = 4


def _gpu_cases(finetuning_examples: int) -> tuple[Case, ...]:
    cases = []
    workers = {"dataloader_workers": GPU_DATALOADER_WORKERS}
    for compiled in (False, True):
        cases += [
            Case("pretraining", BERT_BASE, 512, 32, "bf16", compiled, 10, 30, **workers),
            Case("pretraining", IMDB_RECIPE, 256, 128, "bf16", compiled, 10, 30, **workers),
        ]
    # Fine-tuning is eager only: its padded shapes change from batch to batch.
    cases.append(finetuning_case(IMDB_RECIPE, 512, 32, "bf16", finetuning_examples, GPU_DATALOADER_WORKERS))
    return tuple(cases)


PRESETS = {
    "smoke": Preset(
        "smoke",
        data="synthetic",
        pretraining_texts=150,
        finetuning_examples=16,
        cases=(
            Case("pretraining", TINY, 32, 8, "no", False, 1, 2),
            finetuning_case(TINY, 64, 8, "no", 16),
        ),
        validation_texts=8,
    ),
    # The device plan's legs at smoke size (SMOKE=1 scripts/gpu_run.sh): one tiny pretraining
    # case, eager and compiled, so each leg of the GPU plan has its CPU twin.
    "smoke_legs": Preset(
        "smoke_legs",
        data="synthetic",
        pretraining_texts=150,
        finetuning_examples=16,
        cases=(
            Case("pretraining", TINY, 32, 8, "no", False, 1, 2),
            # aot_eager captures the graph as inductor does but generates no kernels: a compiled
            # leg in seconds on a CPU, so the smoke checks the plumbing, not inductor.
            Case("pretraining", TINY, 32, 8, "no", True, 1, 2, compile_backend="aot_eager"),
        ),
        validation_texts=8,
    ),
    "cpu": Preset(
        "cpu",
        data="imdb",
        pretraining_texts=3000,
        finetuning_examples=128,
        cases=(
            Case("pretraining", SMALL_BERT, 128, 32, "no", False, 5, 30),
            finetuning_case(SMALL_BERT, 512, 8, "no", 128),
        ),
    ),
    "gpu": Preset(
        "gpu", data="imdb", pretraining_texts=8000, finetuning_examples=1024, cases=_gpu_cases(1024)
    ),
}


def get_preset(
    name: str,
    warmup_steps: int | None = None,
    steps: int | None = None,
    tasks: tuple[str, ...] = ("pretraining", "finetuning"),
    compile_modes: tuple[bool, ...] = (False, True),
    finetuning_examples: int | None = None,
    encoders: tuple[str, ...] | None = None,
) -> Preset:
    """A preset by name, keeping the cases of `tasks` and `compile_modes`, optionally with the
    pretraining cases' warm-up and timed steps and the fine-tuning set's size replaced
    (fine-tuning always warms up for one epoch and times the next). `encoders` keeps the cases of
    those EncoderSize names only."""
    if name not in PRESETS:
        raise TunekitError(f"preset: unknown {name!r} (choose from {', '.join(PRESETS)})")
    preset = PRESETS[name]
    for value, field_name in ((warmup_steps, "warmup_steps"), (steps, "steps")):
        if value is not None and value <= 0:
            raise TunekitError(f"{field_name} must be positive, got {value}")
    examples = finetuning_examples or preset.finetuning_examples
    cases = tuple(
        finetuning_case(
            case.encoder, case.seq_len, case.batch_size, case.precision, examples, case.dataloader_workers
        )
        if case.task == "finetuning"
        else replace(
            case,
            warmup_steps=warmup_steps if warmup_steps is not None else case.warmup_steps,
            steps=steps if steps is not None else case.steps,
        )
        for case in preset.cases
        if case.task in tasks
        and case.compile in compile_modes
        and (encoders is None or case.encoder.name in encoders)
    )
    if not cases:
        raise TunekitError(
            f"preset {name}: no case left for tasks {tasks}, compile {compile_modes}, encoders {encoders}"
        )
    return replace(preset, cases=cases, finetuning_examples=examples)
