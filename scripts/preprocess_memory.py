"""Peak memory of preprocessing (tokenizer training, MLM packing, classification tokenization) alone.

`python scripts/preprocess_memory.py --fraction 0.1` preprocesses an even 10% spread of IMDb unsup + train
in a fresh process with an empty cache and prints its peak RSS; run it at two fractions to see
whether the peak grows with the corpus.
"""

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

# tools/ sits beside scripts/ and is not installed with tunekit: import it from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.preprocess_memory import measure_preprocessing_memory  # noqa: E402
from tunekit.config.arguments import TOKENIZER_TRAINING_CHARS  # noqa: E402
from tunekit.errors import TunekitError  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.1, help="Share of each file's rows, in (0, 1].")
    parser.add_argument(
        "--data_dir",
        default=str(Path(os.environ.get("TUNEKIT_SHARED_DATA", "../shared/data")) / "imdb"),
        help="Folder with unsup.jsonl.gz and train.jsonl.gz.",
    )
    parser.add_argument(
        "--tokenizer_training_chars",
        type=int,
        default=TOKENIZER_TRAINING_CHARS,
        help="Characters the tokenizer trains on (0 = all the text, as before the bound).",
    )
    args = parser.parse_args()
    try:
        report = measure_preprocessing_memory(
            Path(args.data_dir), args.fraction, tokenizer_training_chars=args.tokenizer_training_chars
        )
    except TunekitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(asdict(report)))
    peak, baseline = round(report.peak_mb), round(report.baseline_mb)
    anonymous, anonymous_baseline = round(report.peak_anonymous_mb), round(report.baseline_anonymous_mb)
    print(f"peak RSS {peak} MB (after imports {baseline} MB), {report.seconds:.0f} s")
    print(f"peak anonymous memory {anonymous} MB (after imports {anonymous_baseline} MB)")
