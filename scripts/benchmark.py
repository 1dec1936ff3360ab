"""tunekit vs the transformers Trainer: pretraining tokens/s and fine-tuning examples/s, one process.

    python scripts/benchmark.py --preset cpu --data_dir ../shared/data --output_dir outputs/benchmark

Presets: smoke (tiny, synthetic, < 1 min), cpu (a few minutes on 2 cores), gpu (BERT-base size and
the IMDb recipe's encoder, bf16, with and without torch.compile). See tunekit/benchmark/.
"""

import argparse
import os
import sys
from pathlib import Path

import torch

from tunekit.benchmark.presets import PRESETS
from tunekit.benchmark.table import format_text, write_outputs
from tunekit.benchmark.trainer_comparison import BenchmarkReport, run_benchmark
from tunekit.cli import setup_logging
from tunekit.errors import TunekitError
from tunekit.training.console import quiet_runs


def default_data_dir() -> Path | None:
    candidates = [
        os.environ.get("TUNEKIT_SHARED_DATA"),
        Path(__file__).resolve().parents[1] / "../shared/data",
    ]
    candidates.append("/work/shared/data")
    return next((Path(c) for c in candidates if c and Path(c, "imdb").is_dir()), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--data_dir", type=Path, default=None, help="Holds imdb/*.jsonl.gz (IMDb presets).")
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/benchmark"))
    parser.add_argument("--name", default=None, help="Output file stem; default benchmark_<preset>.")
    parser.add_argument("--model_type", choices=("bert", "modernbert"), default="bert")
    parser.add_argument("--warmup_steps", type=int, default=None, help="Override every case's W.")
    parser.add_argument("--steps", type=int, default=None, help="Override every case's timed N.")
    parser.add_argument(
        "--tasks", nargs="+", choices=("pretraining", "finetuning"), default=["pretraining", "finetuning"]
    )
    parser.add_argument(
        "--compile",
        choices=("both", "off", "on"),
        default="both",
        help="Which compile cases of the preset run.",
    )
    parser.add_argument(
        "--finetuning_examples",
        type=int,
        default=None,
        help="Override the fine-tuning set (a multiple of its batch).",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads; default: torch's.")
    parser.add_argument(
        "--profile_dir",
        type=Path,
        default=None,
        help="Profile up to 3 warm-up steps of every leg (torch.profiler) into this folder; the timed "
        "window is not profiled (tunekit/benchmark/profiling.py).",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    compile_modes = {"both": (False, True), "off": (False,), "on": (True,)}[args.compile]
    setup_logging()
    stem = args.name or f"benchmark_{args.preset}"

    def write_partial(partial: BenchmarkReport) -> None:
        write_outputs(partial.rows, partial.notes, partial.meta, args.output_dir, stem)

    try:
        # The per-leg map bars would bury the table; the setting is restored after (the suite runs
        # this main in-process).
        with quiet_runs():
            report = run_benchmark(
                args.preset,
                args.data_dir or default_data_dir(),
                args.model_type,
                args.warmup_steps,
                args.steps,
                tuple(args.tasks),
                compile_modes,
                args.finetuning_examples,
                on_case_done=write_partial,
                profile_dir=args.profile_dir,
            )
    except TunekitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_text(report.rows))
    for note in report.notes:
        print(f"- {note}")
    paths = write_outputs(report.rows, report.notes, report.meta, args.output_dir, stem)
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
