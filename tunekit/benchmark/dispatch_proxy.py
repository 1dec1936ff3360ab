"""A CPU proxy for launch overhead: ATen ops dispatched per training step, eager vs compiled.

On a GPU every ATen op the host dispatches costs host time (dispatcher, autograd, allocator) and
most launch at least one kernel; the H200 profiles showed the GPU idle 40 % of a step while the
host dispatched. How many ops one training step dispatches can be counted on a CPU, with no GPU:
torch.profiler records each dispatched op, and a step run eagerly and run through torch.compile
dispatch very different numbers. The count is a proxy: it says how much dispatching there is, not
how long it takes on a GPU, nor how many CUDA kernels inductor would generate there (on a CPU its
fused loops run as C++ functions, which the profiler does not list as ops).

The step is tunekit's own (`run_pretraining`, the masked-only MLM head and rows-only last layer),
counted over optimizer steps after warm-up through torch's optimizer post-step hook, as the
benchmark times them.
"""

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile, schedule

TOP_OPS = 12
COMPILED_REGION = "Torch-Compiled Region"


@dataclass
class DispatchCount:
    mode: str
    steps: int  # optimizer steps recorded
    aten_ops_per_step: float  # ATen op calls (every dispatch, nested ones included)
    distinct_aten_ops: int
    compiled_regions_per_step: float  # calls into a compiled graph
    top: list[tuple[str, float]] = field(default_factory=list)  # the most called ops, calls per step
    by_part: dict[str, float] = field(default_factory=dict)  # ATen ops per step by where they ran


# Where an op ran, by the outermost profiler range around it.
PARTS = (
    ("compiled forward", lambda root: root.startswith(COMPILED_REGION)),
    ("compiled backward", lambda root: "CompiledFunctionBackward" in root),
    ("optimizer step", lambda root: root.startswith("Optimizer.")),
    ("eager backward", lambda root: root.startswith("autograd::engine::evaluate_function")),
)
OTHER_PART = "eager forward, loss, clipping, zero_grad"


def part_of(event: object) -> str:
    root = event  # the outermost range below the profiler's own step range
    while root.cpu_parent is not None and not root.cpu_parent.name.startswith("ProfilerStep"):
        root = root.cpu_parent
    return next((name for name, matches in PARTS if matches(root.name)), OTHER_PART)


def summarize(mode: str, averages: list, steps: int, events: list | None = None) -> DispatchCount:
    aten = [event for event in averages if event.key.startswith("aten::")]
    regions = sum(event.count for event in averages if event.key.startswith(COMPILED_REGION))
    ranked = sorted(aten, key=lambda event: event.count, reverse=True)[:TOP_OPS]
    parts: dict[str, float] = {}
    for event in events or []:
        if event.name.startswith("aten::"):
            part = part_of(event)
            parts[part] = parts.get(part, 0.0) + 1 / steps
    return DispatchCount(
        mode=mode,
        steps=steps,
        aten_ops_per_step=sum(event.count for event in aten) / steps,
        distinct_aten_ops=len(aten),
        compiled_regions_per_step=regions / steps,
        top=[(event.key, event.count / steps) for event in ranked],
        by_part=parts,
    )


@contextmanager
def counted_steps(mode: str, first: int, steps: int, results: list[DispatchCount]) -> Iterator[None]:
    """Record optimizer steps `first` .. `first + steps - 1` (1-based, first >= 2) of the block;
    append their counts to `results` when the last one ends."""
    ended = 0

    def recorded(finished: profile) -> None:
        results.append(summarize(mode, finished.key_averages(), steps, finished.events()))

    profiler = profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(skip_first=first - 2, wait=0, warmup=1, active=steps, repeat=1),
        on_trace_ready=recorded,
    )

    def step_ended(*_: object) -> None:
        nonlocal ended
        if ended < first + steps - 1:
            ended += 1
            profiler.step()
            if ended == first + steps - 1:
                profiler.stop()

    profiler.start()
    handle = register_optimizer_step_post_hook(step_ended)
    try:
        yield
    finally:
        handle.remove()
        if ended < first + steps - 1:
            profiler.stop()


# A 2-layer ModernBERT (the recipes' architecture: a global layer, then a sliding-window one, whose
# +-64 keys matter at T = 128) on tunekit's synthetic corpus: small enough to compile on a shared
# CPU in a few minutes.
SEQ_LEN, BATCH = 128, 8
MODEL = [
    *["--model_type", "modernbert", "--vocab_size", "512", "--hidden_size", "64"],
    *["--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "128"],
    *["--max_position_embeddings", "128", "--dropout", "0.0"],
]


def measure(mode: str, warmup_steps: int = 5, steps: int = 3, work: Path | None = None) -> DispatchCount:
    """Count the ops of tunekit's MLM step: `mode` is "eager" or a torch.compile backend."""
    from tunekit.config import parse_recipe
    from tunekit.data.synthetic import build_synthetic_corpus
    from tunekit.training.tasks import run_pretraining

    with tempfile.TemporaryDirectory(prefix="tunekit_dispatch_") as tmp:
        root = work or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        corpus = build_synthetic_corpus(seed=0, num_unlabeled=300, num_train=8, num_validation=8, num_test=8)
        train = root / "train.jsonl"
        train.write_text("".join(json.dumps(dict(row)) + "\n" for row in corpus["unlabeled"]))
        compiled = [] if mode == "eager" else ["--torch_compile", "true", "--torch_compile_backend", mode]
        argv = [
            *["--train_file", str(train), "--train_split", "train", *MODEL, *compiled],
            *["--max_seq_length", str(SEQ_LEN), "--per_device_train_batch_size", str(BATCH)],
            *["--use_cpu", "true"],
            *["--max_steps", str(warmup_steps + steps + 1), "--logging_steps", "100", "--eval_steps", "0"],
            *["--save_steps", "0", "--save_model", "false", "--report_to", "none", "--disable_tqdm", "true"],
            *["--output_dir", str(root / mode)],
        ]
        results: list[DispatchCount] = []
        with counted_steps(mode, warmup_steps + 1, steps, results):
            run_pretraining(*parse_recipe(argv))
    return results[0]


def markdown(counts: list[DispatchCount], meta: dict[str, str]) -> str:
    lines = [
        "# CPU proxy for launch overhead: ATen ops dispatched per training step",
        "",
        "**A proxy, not a GPU measurement.** The number of ATen ops one optimizer step of tunekit's MLM "
        "step dispatches, counted by torch.profiler on a CPU (`tunekit/benchmark/dispatch_proxy.py`). "
        "On a GPU each such op costs host time and most launch at least one kernel; the counts say how "
        "much dispatching compilation removes, not how long a GPU step takes. Inductor's fused CPU "
        "loops are C++ functions the profiler does not list, so the compiled count is the ops left "
        "outside them: matmuls and the like, which inductor calls as library kernels, and what runs "
        "outside the compiled model: the loss, gradient clipping and AdamW, which on a CPU is torch's "
        "per-parameter loop (on CUDA tunekit's AdamW is one fused kernel).",
        "",
        *[f"- **{key}**: {value}" for key, value in meta.items()],
        "",
        "| mode | ATen ops / step | distinct ops | compiled-graph calls / step | vs eager |",
        "|---|---|---|---|---|",
    ]
    eager = next((count.aten_ops_per_step for count in counts if count.mode == "eager"), None)
    for count in counts:
        ratio = f"{count.aten_ops_per_step / eager:.2f}×" if eager else "—"
        lines.append(
            f"| {count.mode} | {count.aten_ops_per_step:,.0f} | {count.distinct_aten_ops} | "
            f"{count.compiled_regions_per_step:g} | {ratio} |"
        )
    parts = [name for name, _ in PARTS] + [OTHER_PART]
    lines += ["", "Where they run (ATen ops per step, by the outermost profiler range around each):", ""]
    lines += ["| mode | " + " | ".join(parts) + " |", "|---|" + "---|" * len(parts)]
    for count in counts:
        cells = [f"{count.by_part.get(part, 0.0):,.0f}" for part in parts]
        lines.append(f"| {count.mode} | " + " | ".join(cells) + " |")
    for count in counts:
        lines += ["", f"Most called ops, {count.mode} (calls per step):", ""]
        lines += [f"- `{name}`: {calls:g}" for name, calls in count.top]
    return "\n".join(lines) + "\n"


def write(counts: list[DispatchCount], meta: dict[str, str], output_dir: Path, stem: str) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = output_dir / f"{stem}.json", output_dir / f"{stem}.md"
    payload = {"meta": meta, "counts": [asdict(count) for count in counts]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    markdown_path.write_text(markdown(counts, meta))
    return [json_path, markdown_path]
