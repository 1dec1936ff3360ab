"""Host time per batch of tunekit's collators against the stock ones (see tunekit/benchmark/collation.py).

`python scripts/collator_benchmark.py [--threads 1] [--shapes 128x256 32x512 32x128]
[--padding_batches 32 128] [--padding_max_length 512]`: trains a WordPiece on the embedded synthetic
corpus, packs blocks for the MLM table, cuts variable-length examples for the padding table, and
prints both tables in markdown.
"""

import argparse
import sys

import datasets
import torch

from tunekit.benchmark.collation import format_markdown, format_padding_markdown, time_collators, time_padding
from tunekit.data.synthetic import build_synthetic_corpus
from tunekit.data.tokenizer_training import train_wordpiece


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shapes", nargs="+", default=["128x256", "32x512", "32x128"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the collator runs on one)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--padding_batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--padding_max_length", type=int, default=512)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [tuple(int(part) for part in shape.split("x")) for shape in args.shapes]
    datasets.disable_progress_bars()  # the packing maps' bars would bury the table
    corpus = build_synthetic_corpus(num_unlabeled=6000, num_train=2, num_validation=1, num_test=1)
    texts = corpus["unlabeled"]["text"]
    tokenizer = train_wordpiece(texts, vocab_size=4000, model_max_length=max(s[1] for s in shapes))
    print(format_markdown(time_collators(tokenizer, texts, shapes, args.repeats)))
    padding = time_padding(tokenizer, texts, args.padding_batches, args.padding_max_length, args.repeats)
    print(format_padding_markdown(padding), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
