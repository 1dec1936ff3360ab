"""Pushing a study's models: the best cell of each arm, by validation accuracy, with the study's report.

Each pushed model gets its own repository, `<hub_model_id>-<arm>`, and a card that says which
cell it is, how it was chosen and links to the study's report and learning curve, which go up
with it. The card is also written into the cell's own README.md, so the local copy says the same.
"""

import logging
from pathlib import Path

from tunekit.errors import TunekitError
from tunekit.hub.card import build_model_card
from tunekit.hub.push import HubTarget, check_can_push, push_output_dir
from tunekit.study.arguments import StudyArguments

logger = logging.getLogger(__name__)

SELECTION_METRIC = "eval_accuracy"
REPORT_FILES = {"study_report.md": "report.md", "learning_curve.png": "learning_curve.png"}


def cell_dir(root: Path, row: dict) -> Path:
    return root / "cells" / row["arm"] / f"budget_{row['budget']}" / f"seed_{row['seed']}"


def best_cells(rows: list[dict]) -> dict[str, dict]:
    """Per arm, the cell with the highest validation accuracy (the first one on ties).

    Validation, not test: the test split stays an unbiased estimate of the pushed model.
    """
    best: dict[str, dict] = {}
    for row in rows:
        score = row.get(SELECTION_METRIC)
        if score is None:
            continue
        if row["arm"] not in best or score > best[row["arm"]][SELECTION_METRIC]:
            best[row["arm"]] = row
    return best


def repo_id_for(args: StudyArguments, arm: str) -> str:
    prefix = args.hub_model_id or Path(args.output_dir).resolve().name
    return f"{prefix}-{arm.replace('_', '-')}"


def check_study_can_push(args: StudyArguments) -> None:
    """Before the first cell: what would make the pushes at the study's end fail (tunekit.hub.push)."""
    for arm in args.arms:
        target = HubTarget(repo_id_for(args, arm), private=args.hub_private_repo, token=args.hub_token)
        check_can_push(target, named=bool(args.hub_model_id))


def study_note(arm: str, row: dict, rows: list[dict], study_name: str) -> str:
    cells = sum(r["arm"] == arm for r in rows)
    return (
        "## Part of a study\n\n"
        f"This is the best `{arm}` model of the tunekit study `{study_name}`: of the arm's {cells} cells "
        f"(label budgets x seeds) it scored the highest validation accuracy ({row[SELECTION_METRIC]:.1%}); "
        f"it is the cell with label budget {row['budget']} and seed {row['seed']}, whose test accuracy "
        f"is {row['test_accuracy']:.1%}. The study's report, with every arm, confidence intervals and the "
        "recipes, is [study_report.md](study_report.md); its learning curve:\n\n"
        "![Test accuracy vs labels](learning_curve.png)"
    )


def push_best_models(args: StudyArguments, rows: list[dict]) -> dict[str, str]:
    """Push each arm's best cell; returns arm -> commit URL."""
    root = Path(args.output_dir)
    extra_files = {name: root / local for name, local in REPORT_FILES.items() if (root / local).is_file()}
    pushed = {}
    for arm, row in best_cells(rows).items():
        output_dir = cell_dir(root, row)
        if not any(output_dir.glob("*.safetensors")):
            raise TunekitError(
                f"push_to_hub: the best {arm} cell ({output_dir}) has no saved model: it ran before "
                "push_to_hub was set; delete its line from results.jsonl and re-run the study"
            )
        note = study_note(arm, row, rows, root.name)
        repo_id = repo_id_for(args, arm)
        build_model_card(output_dir, repo_id=repo_id, note=note).save(output_dir / "README.md")
        target = HubTarget(repo_id, private=args.hub_private_repo, token=args.hub_token)
        pushed[arm] = push_output_dir(output_dir, target, extra_files=extra_files, card_note=note)
        logger.info("pushed the best %s cell (%s) to %s", arm, output_dir, repo_id)
    return pushed
