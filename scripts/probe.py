"""Linear probe of a saved pretraining on labeled text, before any fine-tuning.

`python scripts/probe.py PRETRAINED_DIR --train_file reviews.jsonl.gz [--architecture transformer]`
fits a logistic regression on frozen mean-pooled features of a class-stratified train subset and
scores it on validation carved from the same file: never on a test split, so it can steer a design.
Prints one JSON line. The study runs the same probe on each of its pretrainings.
"""

import argparse
import json
import sys

from tunekit.cli import setup_logging
from tunekit.config import DataArguments
from tunekit.data.sources import load_raw
from tunekit.data.splits import prepare_splits, stratified_subset
from tunekit.study.arms import pretraining_named
from tunekit.study.probes import probe_pretrained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--train_file", nargs="+", required=True, help="Labeled text (text, label).")
    parser.add_argument("--architecture", default="transformer", choices=("transformer", "lstm", "decoder"))
    parser.add_argument("--train_examples", type=int, default=500)
    parser.add_argument("--validation_examples", type=int, default=1000)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    data_args = DataArguments(train_file=args.train_file)
    splits = prepare_splits(load_raw(data_args), data_args, args.seed, labeled=True)
    column, label = data_args.text_column, data_args.label_column
    # A cap, not a label budget: a small file gives the probe all of its training rows.
    splits.train = stratified_subset(splits.train, args.train_examples, label, args.seed)
    validation = splits.validation.shuffle(seed=args.seed).select(
        range(min(args.validation_examples, len(splits.validation)))
    )
    probes = probe_pretrained(
        args.model_dir,
        pretraining_named(args.architecture).probe,
        (splits.train[column], splits.train[label]),
        (validation[column], validation[label]),
        max_length=args.max_length,
    )
    print(json.dumps({"model_dir": args.model_dir, **probes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
