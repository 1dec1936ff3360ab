"""The four-step walkthrough on the embedded default, then one table of test accuracy per model:
pretrain -> fine-tune pretrained -> fine-tune from scratch -> LSTM (`make walkthrough`). `make study`
runs the fuller study, scripts/study.py recipes/tiny/study.yaml.

Extra flags apply to every stage, e.g. `python scripts/walkthrough.py --max_steps 20` for a smoke run.
"""

import sys

from tunekit.cli import setup_logging
from tunekit.errors import TunekitError
from tunekit.study.walkthrough import format_table, run_walkthrough

if __name__ == "__main__":
    setup_logging()
    try:
        rows = run_walkthrough(sys.argv[1:])
    except TunekitError as error:
        sys.exit(f"error: {error}")
    print("\n" + format_table(rows))
