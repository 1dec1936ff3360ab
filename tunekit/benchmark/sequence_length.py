"""Cost versus sequence length: wall time per training token of an LSTM and a transformer encoder.

The talk's claim: an LSTM's sequential depth grows with the sequence (each of its T steps needs the
previous one), a transformer's does not (its L layers each see all T positions at once). Both models
here are sequence classifiers with the same non-embedding parameter count (the LSTM's hidden size is
solved for), trained on the same number of tokens per batch (batch size = batch_tokens / T), and each
step is one forward and backward pass, timed after warm-up as the median of several repeats.
"""

import logging
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from tunekit.errors import TunekitError
from tunekit.models.lstm import LSTMConfig, LSTMForSequenceClassification

logger = logging.getLogger(__name__)

NOTES = (
    "Sequential depth: a forward pass of the LSTM is T x layers dependent steps (each time step needs "
    "the previous hidden state), so doubling T doubles the chain of small matrix products that cannot "
    "run in parallel; the transformer's depth is its number of layers whatever T is, each a few large "
    "matrix products over all positions at once. Its price is attention, whose work per token grows "
    "linearly with T (12 x layers x hidden x T FLOPs per trained token, PaLM appendix B). Equal batch "
    "tokens means that at larger T the batch has fewer sequences, so each LSTM step multiplies a "
    "smaller matrix. On a device with far more parallel units than one step can fill (a GPU), the "
    "LSTM's time per token is expected to grow with T while the transformer's stays flat until "
    "attention dominates; on a CPU with few cores, where every product already saturates the cores, "
    "the LSTM's time per token should stay roughly flat and the transformer's grow with its attention "
    "term. The measurement, not this expectation, is the finding."
)


@dataclass
class SequenceLengthArguments:
    output_dir: str = field(default="outputs/sequence_length", metadata={"help": "Table, JSON and PNG."})
    lengths: list[int] = field(
        default_factory=lambda: [64, 128, 256, 512, 1024], metadata={"help": "Sequence lengths T."}
    )
    batch_tokens: int = field(default=4096, metadata={"help": "Tokens per batch (batch size x T), every T."})
    transformer_type: str = field(default="bert", metadata={"help": "Encoder config: bert or modernbert."})
    hidden_size: int = field(default=256, metadata={"help": "Transformer hidden size."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Transformer layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "Transformer attention heads."})
    intermediate_size: int = field(default=1024, metadata={"help": "Transformer MLP size."})
    lstm_num_hidden_layers: int = field(default=1, metadata={"help": "BiLSTM layers; hidden size is solved."})
    vocab_size: int = field(default=8192, metadata={"help": "Vocabulary of both models."})
    precision: str = field(default="fp32", metadata={"help": "fp32, or bf16 (autocast)."})
    lstm_fp32_recurrence: bool = field(
        default=True, metadata={"help": "Keep the LSTM recurrence in fp32 under bf16 autocast (as trained)."}
    )
    warmup: int = field(default=2, metadata={"help": "Untimed steps per model and T."})
    repeats: int = field(default=5, metadata={"help": "Timed steps per model and T; the median is kept."})
    device: str = field(default="auto", metadata={"help": "auto (CUDA if available), cuda or cpu."})
    seed: int = field(default=0, metadata={"help": "Seed for weights and random token ids."})
    num_threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for torch (0: torch's default). On a shared machine 1 avoids waiting for "
            "descheduled worker threads at every small operation, which dominates an LSTM's time."
        },
    )

    def __post_init__(self) -> None:
        if not self.lengths or min(self.lengths) < 2:
            raise TunekitError(f"lengths: give sequence lengths of at least 2, got {self.lengths}")
        if self.batch_tokens < max(self.lengths):
            raise TunekitError(
                f"batch_tokens: {self.batch_tokens} is below the longest length {max(self.lengths)}"
            )
        if self.precision not in ("fp32", "bf16"):
            raise TunekitError(f"precision: {self.precision!r} is neither fp32 nor bf16")
        if self.repeats < 1 or self.warmup < 0:
            raise TunekitError(
                f"repeats/warmup: need repeats >= 1 and warmup >= 0, got {self.repeats}/{self.warmup}"
            )
        if self.num_threads < 0:
            raise TunekitError(f"num_threads: {self.num_threads} is negative")
        if self.transformer_type not in ("bert", "modernbert"):
            raise TunekitError(f"transformer_type: {self.transformer_type!r} is neither bert nor modernbert")


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters outside embedding tables: the ones a token meets in a matrix product."""
    embedded = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embedded)


def build_transformer(args: SequenceLengthArguments) -> PreTrainedModel:
    extra = {"global_attn_every_n_layers": 1} if args.transformer_type == "modernbert" else {}
    config = AutoConfig.for_model(
        args.transformer_type,
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=max(args.lengths),
        num_labels=2,
        pad_token_id=0,
        **extra,  # ModernBERT: every layer global, so no sliding window caps attention's cost
    )
    return AutoModelForSequenceClassification.from_config(config)


def build_lstm(args: SequenceLengthArguments, hidden_size: int) -> LSTMForSequenceClassification:
    config = LSTMConfig(
        vocab_size=args.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=args.lstm_num_hidden_layers,
        bidirectional=True,
        fp32_recurrence=args.lstm_fp32_recurrence,
        num_labels=2,
    )
    return LSTMForSequenceClassification(config)


def solve_lstm_hidden_size(args: SequenceLengthArguments, target: int) -> int:
    """The LSTM hidden size whose non-embedding parameter count is closest to `target`."""
    with torch.device("meta"):  # counting only: no memory, no initialisation

        def count(hidden: int) -> int:
            return non_embedding_parameters(build_lstm(args, hidden))

        low, high = 1, 8192
        while low < high:  # the count grows with the hidden size: bisect for the first one >= target
            middle = (low + high) // 2
            low, high = (middle + 1, high) if count(middle) < target else (low, middle)
        return min((low - 1, low), key=lambda hidden: abs(count(max(hidden, 1)) - target))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_step(
    model: torch.nn.Module, batch: dict, device: torch.device, precision: str, warmup: int, repeats: int
) -> list[float]:
    """Seconds of `repeats` forward+backward passes, after `warmup` untimed ones."""
    times = []
    for i in range(warmup + repeats):
        model.zero_grad(set_to_none=True)
        _synchronize(device)
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        _synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return times


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TunekitError("device: cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    names = (
        [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        if cpuinfo.is_file()
        else []
    )
    return f"CPU {names[0] if names else platform.machine()}, {torch.get_num_threads()} thread(s)"


def _random_batch(args: SequenceLengthArguments, length: int, device: torch.device) -> dict:
    """batch_tokens // T sequences of T random token ids, all real tokens (no padding), random labels."""
    batch_size = args.batch_tokens // length
    generator = torch.Generator().manual_seed(args.seed + length)
    batch = {
        "input_ids": torch.randint(1, args.vocab_size, (batch_size, length), generator=generator),
        "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch_size,), generator=generator),
    }
    return {key: value.to(device) for key, value in batch.items()}


def _row(name: str, model: PreTrainedModel, length: int, batch_size: int, times: list[float]) -> dict:
    tokens, median = batch_size * length, statistics.median(times)
    layers = model.config.num_hidden_layers
    return {
        "model": name,
        "seq_len": length,
        "batch_size": batch_size,
        "tokens_per_step": tokens,
        "step_seconds_median": median,
        "step_seconds_all": times,
        "microseconds_per_token": 1e6 * median / tokens,
        "tokens_per_second": tokens / median,
        # dependent steps in one forward pass (per direction for the LSTM)
        "sequential_depth": length * layers if name == "LSTM" else layers,
    }


def measure(args: SequenceLengthArguments) -> dict:
    """Time both models at every length; returns the models' sizes and one row per (model, T)."""
    device = _device(args.device)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    torch.manual_seed(args.seed)
    transformer = build_transformer(args)
    target = non_embedding_parameters(transformer)
    lstm = build_lstm(args, solve_lstm_hidden_size(args, target))
    models = {f"transformer ({args.transformer_type})": transformer, "LSTM": lstm}
    sizes = {
        name: {
            "parameters": sum(p.numel() for p in model.parameters()),
            "non_embedding_parameters": non_embedding_parameters(model),
            "hidden_size": model.config.hidden_size,
            "layers": model.config.num_hidden_layers,
        }
        for name, model in models.items()
    }
    for name, size in sizes.items():
        logger.info("%s: %s", name, size)
    for model in models.values():
        model.to(device).train()
    rows = []
    for length in sorted(args.lengths):
        batch = _random_batch(args, length, device)
        for model in models.values():  # warm-up: allocator, kernels, caches
            time_training_step(model, batch, device, args.precision, args.warmup, 0)
        # Interleaved repeats: a load change on a shared machine hits both models alike, so their
        # ratio at one T stays fair even when the absolute times drift.
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name] += time_training_step(model, batch, device, args.precision, 0, 1)
        for name, model in models.items():
            rows.append(_row(name, model, length, batch["input_ids"].shape[0], times[name]))
            logger.info("%s T=%d: %.1f us/token", name, length, rows[-1]["microseconds_per_token"])
    return {
        "arguments": asdict(args),
        "device": device_description(device),
        "torch": torch.__version__,
        "models": sizes,
        "rows": rows,
        "notes": NOTES,
    }
