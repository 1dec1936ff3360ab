"""Cost versus sequence length: wall time per training token, LSTM vs transformer, T = 64 ... 1024.

`python scripts/sequence_length.py [RECIPE] [--field value ...]` writes sequence_length.{md,json,png}
under --output_dir. `--help` lists every field (sizes, batch tokens, precision, repeats, device).
"""

import shlex
import sys

from tunekit.benchmark.sequence_length import SequenceLengthArguments, measure
from tunekit.benchmark.sequence_length_report import format_table, write_outputs
from tunekit.cli import run_script


def main(args: SequenceLengthArguments) -> None:
    measured = measure(args)
    paths = write_outputs(measured, args.output_dir, shlex.join(["python", *sys.argv]))
    print(format_table(measured))
    print(f"table: {paths['md']}  plot: {paths['png']}  data: {paths['json']}")


if __name__ == "__main__":
    sys.exit(run_script(main, dataclass_types=(SequenceLengthArguments,)))
