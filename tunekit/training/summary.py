"""What a run says when it ends, and what an evaluation says when it is computed.

The transformers examples print their metrics and where the model went; a tunekit run does the same
in one short block, built here from the run's `results.json` so the console and the file agree.
Only the main process calls these (the scripts' logging is set up on every process).
"""

import logging
import math
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The result keys the block names, in the order it names them; other eval_/test_ keys follow.
_METRIC_ORDER = ("loss", "perplexity", "accuracy", "f1")


def format_metrics(metrics: dict[str, Any], prefix: str | None = None) -> str:
    """`{'eval_loss': 0.68, 'eval_accuracy': 0.55}` -> `loss 0.6800, accuracy 0.5500`.

    With `prefix` ("eval", "test"), only that split's keys, named without it."""
    items = []
    for key, value in metrics.items():
        split, _, name = key.partition("_")
        if prefix is not None and split != prefix:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        items.append((name if prefix is not None else key, float(value)))
    rank = {name: i for i, name in enumerate(_METRIC_ORDER)}
    items.sort(key=lambda item: rank.get(item[0], len(rank)))
    return ", ".join(f"{name} {_number(value)}" for name, value in items)


def _number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:,.0f}"


def _seconds(value: float) -> str:
    minutes, seconds = divmod(round(value), 60)
    return f"{value:.1f} s" if minutes == 0 else f"{minutes} min {seconds:02d} s"


def summary_lines(
    results: dict[str, Any], output_dir: str | Path, pushed_url: str | None = None
) -> list[str]:
    """The end-of-run block: loss, metrics, throughput, time, and where everything was written."""
    output_dir = Path(output_dir)
    lines = [
        f"run finished: {results.get('global_step', 0)} optimizer steps, "
        f"{results.get('tokens_seen', 0):,} tokens ({results.get('task', 'training')})"
    ]
    if (loss := results.get("train_loss")) is not None:
        lines.append(f"  final training loss  {_number(loss)}")
    if evaluation := format_metrics(results, "eval"):
        lines.append(f"  validation           {evaluation}")
    if test := format_metrics(results, "test"):
        lines.append(f"  test                 {test}")
    speed = [f"{results['tokens_per_second']:,.1f} tokens/s"] if "tokens_per_second" in results else []
    if "examples_per_second" in results:
        speed.append(f"{results['examples_per_second']:,.2f} examples/s")
    if speed:
        lines.append(f"  throughput           {', '.join(speed)}")
    if "wall_time" in results:
        lines.append(
            f"  time                 {_seconds(results['wall_time'])} wall, "
            f"{_seconds(results.get('train_runtime', 0.0))} training"
        )
    weights = "adapter_model.safetensors" if (output_dir / "adapter_model.safetensors").exists() else None
    weights = weights or ("model.safetensors" if (output_dir / "model.safetensors").exists() else None)
    if weights:
        lines.append(f"  model                {output_dir}/ ({weights}, config, tokenizer)")
    else:
        lines.append(f"  model                not saved (save_model false); run files in {output_dir}/")
    if (output_dir / "README.md").exists():
        lines.append(f"  model card           {output_dir / 'README.md'}")
    lines.append(f"  metrics              {output_dir / 'results.json'}, {output_dir / 'metrics.jsonl'}")
    if pushed_url:
        lines.append(f"  pushed               {pushed_url}")
    return lines


def log_run_summary(results: dict[str, Any], output_dir: str | Path, pushed_url: str | None = None) -> None:
    for line in summary_lines(results, output_dir, pushed_url):
        logger.info(line)


def log_evaluation(step: int, metrics: dict[str, Any]) -> None:
    """One console line per evaluation, as it is computed."""
    if metrics:
        logger.info("step %d: %s", step, format_metrics(metrics))
