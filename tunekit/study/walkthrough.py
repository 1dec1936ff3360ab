"""The four-step walkthrough: pretrain, fine-tune pretrained, fine-tune from scratch, LSTM; one table.

Each stage is an ordinary recipe run through the same functions as the scripts, so the walkthrough
shows exactly what `scripts/pretrain.py` and `scripts/finetune.py` do.
"""

import logging
from pathlib import Path

from tunekit.config import parse_recipe
from tunekit.training.tasks import run_finetuning, run_pretraining

logger = logging.getLogger(__name__)

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "tiny"  # tunekit/study/ -> the repository
STAGES = (
    ("pretrain", "pretrain.yaml", run_pretraining),
    ("transformer, pretrained", "finetune_pretrained.yaml", run_finetuning),
    ("transformer, scratch", "finetune_scratch.yaml", run_finetuning),
    ("LSTM, scratch", "lstm.yaml", run_finetuning),
)


def format_table(rows: list[dict]) -> str:
    header = f"{'model':<26} {'test acc':>9} {'test F1':>8} {'params':>9} {'train s':>8} {'wall s':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        accuracy = row.get("test_accuracy")
        cells = (
            f"{accuracy:9.3f}" if accuracy is not None else f"{'-':>9}",
            f"{row['test_f1']:8.3f}" if accuracy is not None else f"{'-':>8}",
        )
        lines.append(
            f"{row['name']:<26} {cells[0]} {cells[1]} {row['num_parameters']:>9,} "
            f"{row['train_runtime']:>8.1f} {row['wall_time']:>7.1f}"
        )
    return "\n".join(lines)


def run_walkthrough(extra_args: list[str] | None = None, recipes: Path = RECIPES) -> list[dict]:
    """Run the four stages in order; `extra_args` (e.g. `--max_steps 10`) apply to every stage."""
    rows = []
    for name, recipe, task in STAGES:
        logger.info("== %s (%s)", name, recipes / recipe)
        argv = [str(recipes / recipe), "--overwrite_output_dir", "true", *(extra_args or [])]
        rows.append({"name": name, **task(*parse_recipe(argv))})
    return rows
