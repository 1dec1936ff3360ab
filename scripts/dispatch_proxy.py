"""A CPU proxy for launch overhead: ATen ops dispatched per training step, eager vs compiled.

    python scripts/dispatch_proxy.py --output_dir docs/benchmarks --name cpu_dispatch_proxy

Counts, not times (see tunekit/benchmark/dispatch_proxy.py): safe to run on a shared machine.
"""

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import transformers

from tunekit.benchmark.dispatch_proxy import BATCH, SEQ_LEN, measure, write
from tunekit.cli import setup_logging
from tunekit.training.console import quiet_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/dispatch_proxy"))
    parser.add_argument("--name", default="cpu_dispatch_proxy")
    parser.add_argument(
        "--modes", nargs="+", default=["eager", "inductor"], help="eager or a compile backend"
    )
    parser.add_argument("--warmup_steps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    setup_logging()
    with quiet_runs():
        counts = [measure(mode, args.warmup_steps, args.steps) for mode in args.modes]
    meta = {
        "command": shlex.join(["python", "scripts/dispatch_proxy.py", *(argv or sys.argv[1:])]),
        "step": f"tunekit MLM pretraining, ModernBERT 2 x 64, T={SEQ_LEN}, B={BATCH}, fp32, CPU; "
        f"steps {args.warmup_steps + 1}-{args.warmup_steps + args.steps} after {args.warmup_steps} warm-up",
        "versions": f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    paths = write(counts, meta, args.output_dir, args.name)
    print(paths[1].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
