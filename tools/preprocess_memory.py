"""Peak memory of preprocessing alone, measured in a fresh process with an empty datasets cache.

The child runs exactly what `run_pretraining` and `run_finetuning` run before the model exists:
load the files, split, train the WordPiece tokenizer, tokenize and pack into MLM blocks, then
tokenize the labeled reviews for classification. Its peak resident set size
(`getrusage(RUSAGE_SELF).ru_maxrss`) and its peak anonymous memory (sampled `RssAnon`) are
compared at two corpus sizes: if preprocessing streams through Arrow, the anonymous peak does not
grow with the corpus. RSS also counts the pages of the memory-mapped Arrow files read so far, which
grow with the corpus but are page cache the kernel can reclaim.
"""

import gzip
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tunekit.config.arguments import TOKENIZER_TRAINING_CHARS
from tunekit.errors import TunekitError


@dataclass
class PreprocessMemory:
    fraction: float
    tokenizer_training_chars: int  # 0: the tokenizer trained on all the text
    pretraining_texts: int
    classification_texts: int
    mlm_blocks: int
    baseline_mb: float  # peak RSS after the imports, before any data is touched
    peak_mb: float  # peak RSS over the whole preprocessing
    baseline_anonymous_mb: float  # the same two without file-backed pages (see `anonymous_rss_mb`)
    peak_anonymous_mb: float
    seconds: float
    peak_mb_by_phase: dict[str, float]  # the running peak after splitting, tokenizer training, packing
    peak_anonymous_mb_by_phase: dict[str, float]  # the same for anonymous memory, + classification


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anonymous_rss_mb() -> float:
    """Resident memory not backed by a file: what the process itself holds, without the pages of the
    memory-mapped Arrow files it has read (RSS counts those too, though the kernel can drop them)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # not Linux


class AnonymousPeak(threading.Thread):
    """Samples `anonymous_rss_mb` every `interval` seconds and keeps the maximum."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self.stopped = interval, anonymous_rss_mb(), threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.peak = max(self.peak, anonymous_rss_mb())

    def running_peak(self) -> float:
        return max(self.peak, anonymous_rss_mb())

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        return self.running_peak()


def spread_of_jsonl_gz(source: Path, fraction: float, target: Path) -> int:
    """Copy an even spread of `fraction` of a gzip JSON Lines file's rows (every k-th, k fractional),
    streaming; returns the rows copied. Not the head: IMDb's train file is sorted by label, and its
    first 10 % would hold one class, which fine-tuning refuses."""
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        total = sum(1 for _ in handle)
    keep = max(1, math.ceil(total * fraction))
    next_kept = 0  # the rows kept are j * total // keep for j = 0 .. keep - 1
    with (
        gzip.open(source, "rt", encoding="utf-8") as reader,
        gzip.open(target, "wt", encoding="utf-8") as out,
    ):
        for index, line in enumerate(reader):
            if index == next_kept * total // keep:
                out.write(line)
                next_kept += 1
                if next_kept == keep:
                    break
    return keep


def _child(config: dict) -> dict:
    """Runs in the fresh process: the preprocessing of a pretraining run and a fine-tuning run."""
    from tunekit.config import DataArguments, ModelArguments, TrainArguments
    from tunekit.data.sources import load_raw
    from tunekit.data.splits import prepare_splits
    from tunekit.data.tokenization import tokenize_and_pack, tokenize_for_classification
    from tunekit.training.accelerator import make_accelerator
    from tunekit.training.tasks import get_tokenizer

    baseline, baseline_anonymous = peak_rss_mb(), anonymous_rss_mb()
    watcher = AnonymousPeak()
    watcher.start()
    started = time.perf_counter()
    output_dir = Path(config["output_dir"])
    accelerator = make_accelerator(TrainArguments(output_dir=str(output_dir), use_cpu=True, report_to="none"))
    block, seed = config["block_size"], 42
    mlm_data = DataArguments(
        train_file=config["pretraining_files"],
        train_split="train",
        validation_split_percentage=1,
        max_seq_length=block,
    )
    splits = prepare_splits(load_raw(mlm_data), mlm_data, seed, labeled=False)
    model_args = ModelArguments(
        vocab_size=config["vocab_size"],
        max_position_embeddings=512,
        tokenizer_training_chars=config["tokenizer_training_chars"],
    )
    phases, anonymous_phases = {"split": peak_rss_mb()}, {"split": watcher.running_peak()}
    tokenizer = get_tokenizer(model_args, mlm_data, splits.train, output_dir, accelerator)
    phases["tokenizer"], anonymous_phases["tokenizer"] = peak_rss_mb(), watcher.running_peak()
    blocks = [
        tokenize_and_pack(split, tokenizer, "text", block) for split in (splits.train, splits.validation)
    ]
    phases["pack"], anonymous_phases["pack"] = peak_rss_mb(), watcher.running_peak()

    labeled = DataArguments(train_file=[config["classification_file"]], max_seq_length=config["max_length"])
    labeled_splits = prepare_splits(load_raw(labeled), labeled, seed, labeled=True)
    for split in (labeled_splits.train, labeled_splits.validation):
        tokenize_for_classification(split, tokenizer, "text", "label", config["max_length"])
    peak_anonymous = watcher.stop()
    return {
        "pretraining_texts": len(splits.train) + len(splits.validation),
        "classification_texts": len(labeled_splits.train) + len(labeled_splits.validation),
        "mlm_blocks": sum(len(part) for part in blocks),
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(peak_rss_mb(), 1),
        "baseline_anonymous_mb": round(baseline_anonymous, 1),
        "peak_anonymous_mb": round(peak_anonymous, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mb_by_phase": {phase: round(value, 1) for phase, value in phases.items()},
        "peak_anonymous_mb_by_phase": {
            **{phase: round(value, 1) for phase, value in anonymous_phases.items()},
            "classification": round(peak_anonymous, 1),
        },
    }


def measure_preprocessing_memory(
    data_dir: Path,
    fraction: float,
    vocab_size: int = 16384,
    block_size: int = 256,
    max_length: int = 512,
    tokenizer_training_chars: int = TOKENIZER_TRAINING_CHARS,
) -> PreprocessMemory:
    """Preprocess an even `fraction` of IMDb unsup + train (the IMDb recipes' data) in a child process."""
    if not 0.0 < fraction <= 1.0:
        raise TunekitError(f"fraction must be in (0, 1], got {fraction}")
    names = ["unsup.jsonl.gz", "train.jsonl.gz"]
    missing = [name for name in names if not (data_dir / name).is_file()]
    if missing:
        raise TunekitError(f"data_dir {data_dir} lacks {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="tunekit-memory-") as scratch:
        root = Path(scratch)
        files = [data_dir / name for name in names]
        if fraction < 1.0:
            files = [root / name for name in names]
            for name, target in zip(names, files, strict=True):
                spread_of_jsonl_gz(data_dir / name, fraction, target)
        config = {
            "pretraining_files": [str(path) for path in files],
            "classification_file": str(files[1]),
            "output_dir": str(root / "run"),
            "vocab_size": vocab_size,
            "block_size": block_size,
            "max_length": max_length,
            "tokenizer_training_chars": tokenizer_training_chars,
        }
        # An empty cache, so every map really runs; offline, as in the tests.
        env = {**os.environ, "HF_DATASETS_CACHE": str(root / "cache"), "HF_HUB_OFFLINE": "1"}
        env["HF_DATASETS_OFFLINE"] = "1"
        # The child measures the tunekit this process imported, wherever it was imported from.
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        code = "import json, sys; from tools.preprocess_memory import _child; "
        code += "print(json.dumps(_child(json.loads(sys.argv[1]))))"
        child = subprocess.run(
            [sys.executable, "-c", code, json.dumps(config)], capture_output=True, text=True, env=env
        )
        if child.returncode != 0:
            raise TunekitError(f"preprocessing child failed: {child.stderr.strip().splitlines()[-1:]}")
        measured = json.loads(child.stdout.strip().splitlines()[-1])
    return PreprocessMemory(fraction=fraction, tokenizer_training_chars=tokenizer_training_chars, **measured)
