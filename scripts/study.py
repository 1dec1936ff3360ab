"""The pretraining-advantage study: arms x label budgets x seeds -> results.jsonl, report.md, plot.

`python scripts/study.py [STUDY_RECIPE] [--field value ...]`; with no recipe it runs the embedded
study, recipes/tiny/study.yaml. Re-running skips finished cells. `--help` lists every field.
"""

import shlex
import sys
from pathlib import Path

from tunekit.cli import run_script
from tunekit.hub.push import redact_token
from tunekit.study import Study, StudyArguments
from tunekit.training.teardown import exit_process

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "study.yaml"


def main(args: StudyArguments) -> None:
    Study(args, command=shlex.join(["python", *redact_token(sys.argv)])).run()


if __name__ == "__main__":
    exit_process(run_script(main, default_recipe=str(DEFAULT_RECIPE), dataclass_types=(StudyArguments,)))
