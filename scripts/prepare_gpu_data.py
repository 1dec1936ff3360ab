"""Compact the local IMDb copy for the GPU run: text + label, xz; `--rows N` keeps an even slice.

`python scripts/prepare_gpu_data.py --output_dir device_data/imdb [--rows N] [--splits train test unsup]`
"""

import argparse
import os
import sys
from pathlib import Path

# tools/ sits beside scripts/ and is not installed with tunekit: import it from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.gpu_session import compact_jsonl  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    shared = Path(os.environ.get("TUNEKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
    parser.add_argument("--source", default=str(shared / "imdb"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--splits", nargs="+", default=["train", "test", "unsup"])
    args = parser.parse_args()
    for split in args.splits:
        source = Path(args.source) / f"{split}.jsonl.gz"
        if not source.is_file():
            print(f"error: {source}: no such file (set TUNEKIT_SHARED_DATA or --source)", file=sys.stderr)
            return 2
        target = Path(args.output_dir) / f"{split}.jsonl.xz"
        if not target.is_file():
            count = compact_jsonl(source, target, args.rows)
            print(f"{target}: {count} rows, {target.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
