"""What every run reports about its speed: tokens/s (and examples/s), MFU and peak memory.

Time counts optimizer steps only: evaluation and checkpointing are left out, so the figures compare
with any other trainer's steady-state throughput. The meter reads the clock only at logging steps,
right after the loop has read the loss from the device, so on a GPU the elapsed time covers the work
that the device has actually finished and the meter adds no waits of its own.
"""

import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator

from tunekit.atomic import atomic_write_text
from tunekit.models.last_layer import query_only_parameters
from tunekit.training.flops import training_flops_per_token, utilisation


def _layers_and_width(config: object) -> tuple[int, int]:
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", 0)
    width = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    return int(layers), int(width)


def flops_per_token(
    model: torch.nn.Module, seq_len: float, head_fraction: float = 1.0, last_layer_fraction: float = 1.0
) -> float:
    """PaLM training FLOPs per token of a transformers model or tunekit's LSTM (see tunekit.training.flops).

    N leaves out the input embedding tables (lookups). For a masked LM the head (transform and the
    vocabulary decoder, tied or not) counts on `head_fraction` of the tokens: the masked share when
    the head runs on masked positions only. The last layer counts on `last_layer_fraction` of them
    when it runs only where its output is read (`tunekit.models.last_layer`). A model made of several
    (replaced-token detection: generator + discriminator) counts itself, with `head_fraction` the
    masked share."""
    if (own_count := getattr(model, "training_flops_per_token", None)) is not None:
        return own_count(seq_len, head_fraction)
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    body = getattr(model, "base_model", model)
    body_ids = {id(p) for p in body.parameters()}
    body_params = sum(p.numel() for p in body.parameters() if id(p) not in embedding_ids)
    head_params = sum(p.numel() for p in model.parameters() if id(p) not in body_ids)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and id(output.weight) in embedding_ids:  # tied: the matmul still runs
        head_params += output.weight.numel()
    if not type(model).__name__.endswith("ForMaskedLM"):
        head_fraction = 1.0
    layers, width = _layers_and_width(model.config)
    return training_flops_per_token(
        body_params,
        layers,
        width,
        round(seq_len),
        head_params=head_params,
        head_fraction=head_fraction,
        attention=getattr(model.config, "model_type", "") != "lstm",
        last_layer_params=query_only_parameters(model) if last_layer_fraction < 1 else 0,
        last_layer_fraction=last_layer_fraction,
    )


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak bytes: the CUDA caching allocator's high-water mark, or on CPU the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated"
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "peak RSS of the process"


@dataclass
class ThroughputMeter:
    """Tokens and examples trained per second of optimizer steps, over a logging window and the run."""

    device: torch.device
    num_processes: int
    masked_only_head: bool  # the MLM head runs on the target tokens only
    last_layer_rows: str | None = None  # the last layer runs at the "targets" or the "first_token" only
    window_seconds: float = 0.0
    run_seconds: float = 0.0
    window_tokens: int = 0
    run_tokens: int = 0
    window_examples: int = 0
    run_examples: int = 0
    positions: int = 0  # padded sequence positions, for the mean sequence length in 12LdT
    head_tokens: int = 0  # tokens the MLM head ran on
    _started: float | None = field(default=None, repr=False)

    def resume(self) -> None:
        """Start (or restart after an evaluation or checkpoint) the training clock."""
        self._started = time.perf_counter()

    def pause(self, sync: bool = False) -> None:
        """Stop the clock; `sync` first waits for queued device work (before evaluation or a save)."""
        if sync and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self._started is not None:
            elapsed = time.perf_counter() - self._started
            self.window_seconds += elapsed
            self.run_seconds += elapsed
            self._started = None

    def count(self, tokens: int, examples: int, positions: int, targets: int) -> None:
        """Add one window's totals over all processes."""
        self.window_tokens += tokens
        self.run_tokens += tokens
        self.window_examples += examples
        self.run_examples += examples
        self.positions += positions
        self.head_tokens += targets if self.masked_only_head else tokens

    def report(
        self, model: torch.nn.Module, window: bool, fine_tuning: bool
    ) -> dict[str, float | str | None]:
        """tokens/s (+ examples/s when fine-tuning), MFU or why it is missing, peak memory."""
        seconds = self.window_seconds if window else self.run_seconds
        tokens = self.window_tokens if window else self.run_tokens
        examples = self.window_examples if window else self.run_examples
        rate = tokens / seconds if seconds > 0 else math.nan
        seq_len = self.positions / max(1, self.run_examples)
        head_fraction = self.head_tokens / max(1, self.run_tokens)
        last_layer_fraction = {
            "targets": head_fraction,
            "first_token": self.run_examples / max(1, self.run_tokens),
        }
        per_token = flops_per_token(
            model, seq_len, head_fraction, last_layer_fraction.get(self.last_layer_rows or "", 1.0)
        )
        use = utilisation(per_token, rate, self.device, self.num_processes)
        memory, memory_source = peak_memory(self.device)
        record: dict[str, float | str | None] = {"tokens_per_second": round(rate, 1)}
        if fine_tuning:
            record["examples_per_second"] = round(examples / seconds, 2) if seconds > 0 else math.nan
        record |= {"mfu": None if use.mfu is None else round(use.mfu, 4), "peak_memory_bytes": memory}
        if not window:
            record |= {
                "train_seconds": round(seconds, 2),
                "flops_per_token": per_token,
                "mfu_note": use.note,
                "peak_memory_source": memory_source,
            }
        if window:
            self.window_seconds, self.window_tokens, self.window_examples = 0.0, 0, 0
        return record


def postfix(record: dict) -> dict[str, str]:
    """Short progress-bar fields."""
    fields = {"loss": f"{record['loss']:.4f}", "tok/s": f"{record['tokens_per_second']:,.0f}"}
    if record.get("mfu") is not None:
        fields["mfu"] = f"{record['mfu']:.1%}"
    fields["mem"] = f"{record['peak_memory_bytes'] / 2**30:.2f}G"
    return fields


class MetricsLog:
    """metrics.jsonl on the main process, plus accelerate's trackers."""

    def __init__(self, accelerator: Accelerator, output_dir: str) -> None:
        self.accelerator = accelerator
        self.path = Path(output_dir) / "metrics.jsonl"

    def drop_after(self, step: int) -> int:
        """On resume from the checkpoint at `step`, remove the lines a killed run logged past it (the
        resumed run logs those steps again); rewritten atomically. Returns how many lines went."""
        if not self.path.is_file():
            return 0
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _logged_step(line) is not None and _logged_step(line) <= step]
        if len(kept) < len(lines):
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        return len(lines) - len(kept)

    def write(self, record: dict, step: int) -> None:
        self.accelerator.log({k: v for k, v in record.items() if isinstance(v, int | float)}, step=step)
        if self.accelerator.is_main_process:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"step": step, **record}) + "\n")


def _logged_step(line: str) -> int | None:
    """A metrics.jsonl line's step; None for a line a kill cut short."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None
