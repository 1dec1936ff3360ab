"""The measurements behind recipes/imdb_cpu/ (issue 8: "design it by measurement").

Run on the 2-core CPU machine, idle:  python tools/imdb_cpu_design.py [STAGE ...]
Stages (default: all, in order): tokenizer throughput mlm finetune lstm_finetune ceiling. Each run is a plain
scripts/pretrain.py / finetune.py / probe.py call on the local IMDb copy, written under
outputs/imdb_cpu/design/, and each measurement is one JSON line in measurements.jsonl there. The
test split is never scored: probes and fine-tuning read validation carved from the train reviews.
Knobs that a stage depends on (the chosen size, the better MLM rate) are passed as environment
variables, so the whole chain can be re-run exactly: see docs/results/imdb_cpu/design.md.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("IMDB_DATA", ROOT.parent / "shared" / "data" / "imdb"))
OUT = Path(os.environ.get("OUT", ROOT / "outputs" / "imdb_cpu" / "design"))
PYTHON = sys.executable
TOKENIZER = OUT / "tokenizer"
PRETRAIN_DATA = [
    "--train_file", f"{DATA}/unsup.jsonl.gz", f"{DATA}/train.jsonl.gz",
    "--train_split", "train", "--test_file", f"{DATA}/test.jsonl.gz",
]  # fmt: skip
# No test file: fine-tuning during design selects on validation only.
FINETUNE_DATA = ["--train_file", f"{DATA}/train.jsonl.gz", "--test_file", "none", "--max_eval_samples", "500"]
SIZES = {  # name: (model_type, layers, width, heads, ffn)
    "modernbert_4x128": ("modernbert", 4, 128, 2, 512),
    "bert_4x128": ("bert", 4, 128, 2, 512),
    "modernbert_4x192": ("modernbert", 4, 192, 3, 768),
    "modernbert_2x128": ("modernbert", 2, 128, 2, 512),
}
LSTM_SIZES = {"lstm_1x128": 128}


def size_args(name: str) -> list[str]:
    model_type, layers, width, heads, ffn = SIZES[name]
    return [
        "--model_type", model_type, "--num_hidden_layers", str(layers), "--hidden_size", str(width),
        "--num_attention_heads", str(heads), "--intermediate_size", str(ffn),
    ]  # fmt: skip


def run(name: str, script: str, recipe: str, *args: str) -> dict:
    """One run; its results.json (plus the wall time) as a measurement line."""
    output_dir = OUT / name
    if (output_dir / "results.json").exists():  # measured before: re-running the stage resumes it
        return json.loads((output_dir / "results.json").read_text())
    command = [
        PYTHON,
        f"scripts/{script}",
        f"recipes/imdb_cpu/{recipe}",
        *args,
        "--output_dir",
        str(output_dir),
    ]
    started = time.time()
    subprocess.run(command, cwd=ROOT, check=True)
    results = json.loads((output_dir / "results.json").read_text())
    keep = (
        "tokens_per_second",
        "tokens_seen",
        "train_runtime",
        "eval_loss",
        "eval_accuracy",
        "num_parameters",
    )
    row = {"name": name, "wall_s": round(time.time() - started, 1), **{k: results.get(k) for k in keep}}
    return record(row, command)


def probe(name: str, architecture: str = "transformer") -> dict:
    command = [
        PYTHON, "scripts/probe.py", str(OUT / name), "--architecture", architecture,
        "--train_file", f"{DATA}/train.jsonl.gz", "--max_length", "256",
    ]  # fmt: skip
    line = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines()[
        -1
    ]
    return record({"name": f"probe/{name}", **json.loads(line)}, command)


def record(row: dict, command: list[str]) -> dict:
    row["command"] = " ".join(str(part).replace(str(ROOT) + "/", "") for part in command)
    with open(OUT / "measurements.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "command"}), flush=True)
    return row


def tokenizer() -> None:
    """Train the 8k WordPiece once (on unsup + train, test copies dropped); later runs load it."""
    # One step of the first candidate (4 x 192, batch 64): also the untrained encoder the probes compare with.
    run("tokenizer", "pretrain.py", "pretrain.yaml", *PRETRAIN_DATA, *size_args("modernbert_4x192"),
        "--per_device_train_batch_size", "64", "--max_steps", "1", "--save_steps", "0")  # fmt: skip


def throughput() -> None:
    """Pretraining tokens/s of each candidate size (block 128, batch 64, fp32), and of the LSTM LM."""
    common = [*PRETRAIN_DATA, "--tokenizer_name_or_path", str(TOKENIZER), "--save_steps", "0"]
    common += ["--per_device_train_batch_size", "64"]
    for name in SIZES:
        run(
            f"throughput/{name}",
            "pretrain.py",
            "pretrain.yaml",
            *common,
            *size_args(name),
            "--max_steps",
            "30",
        )
    for name, width in LSTM_SIZES.items():
        run(f"throughput/{name}", "pretrain.py", "lstm_pretrain.yaml", *common, "--hidden_size", str(width),
            "--max_steps", "30")  # fmt: skip


def mlm() -> None:
    """The chosen size at two masking rates (and batch sizes), same steps; the linear probe decides."""
    size, steps = os.environ.get("SIZE", "modernbert_4x128"), os.environ.get("MLM_STEPS", "600")
    common = [
        *PRETRAIN_DATA,
        "--tokenizer_name_or_path",
        str(TOKENIZER),
        "--save_steps",
        "0",
        "--max_steps",
        steps,
    ]
    batch = os.environ.get("BATCH", "64")
    for rate in os.environ.get("MLM_RATES", "0.15 0.3").split():
        name = f"mlm/{size}_mask{rate}" + ("" if batch == "64" else f"_batch{batch}")
        run(name, "pretrain.py", "pretrain.yaml", *common, *size_args(size), "--mlm_probability", rate,
            "--per_device_train_batch_size", batch)  # fmt: skip
        probe(name)


def finetune() -> None:
    """Learning rate per arm at LABELS labels (100 by default), from a pretraining (PRETRAINED: a
    folder under OUT, or any path) and from scratch; validation only. FOLDER names the runs' folder."""
    size, pretrained = os.environ.get("SIZE", "modernbert_4x128"), os.environ["PRETRAINED"]
    labels = os.environ.get("LABELS", "100")
    folder = os.environ.get("FOLDER") or ("finetune" if labels == "100" else f"finetune_{labels}")
    common = [*FINETUNE_DATA, "--max_train_samples", labels]
    for lr in os.environ.get("PRETRAINED_LRS", "1e-4 3e-4 1e-3").split():
        run(f"{folder}/pretrained_lr{lr}", "finetune.py", "finetune_pretrained.yaml", *common,
            "--model_name_or_path", str(OUT / pretrained), "--learning_rate", lr)  # fmt: skip
    for lr in os.environ.get("SCRATCH_LRS", "3e-4 1e-3 3e-3").split():
        run(f"{folder}/scratch_lr{lr}", "finetune.py", "finetune_scratch.yaml", *common, *size_args(size),
            "--tokenizer_name_or_path", str(TOKENIZER), "--learning_rate", lr)  # fmt: skip


def lstm_finetune() -> None:
    """The biLSTM classifier's learning rate at LABELS labels, from its language model
    (LSTM_PRETRAINED: a folder under OUT, or any path) and from scratch; validation only."""
    labels = os.environ.get("LABELS", "100")
    common = [*FINETUNE_DATA, "--max_train_samples", labels, "--tokenizer_name_or_path", str(TOKENIZER)]
    language_model = ["--model_name_or_path", str(OUT / os.environ["LSTM_PRETRAINED"])]
    for init, start in (("pretrained", language_model), ("scratch", [])):
        for lr in os.environ.get("LSTM_LRS", "1e-3 2e-3 5e-3 1e-2").split():
            run(f"lstm_finetune_{labels}/{init}_lr{lr}", "finetune.py", "lstm.yaml", *common, *start,
                "--learning_rate", lr)  # fmt: skip


def ceiling() -> None:
    """What 100 / 1 000 labels give at 128 tokens with no pretraining and no network: a binary
    bag-of-words logistic regression over the study's tokens, on each cell's own label subset
    (seeds 0-2), scored on the cells' validation reviews. A yardstick for every arm."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    from tunekit.config import parse_recipe
    from tunekit.data.sources import load_raw
    from tunekit.data.splits import prepare_splits
    from tunekit.data.tokenization import load_tokenizer

    words = load_tokenizer(str(TOKENIZER))

    def bag(texts) -> csr_matrix:
        ids = words(list(texts), truncation=True, max_length=128)["input_ids"]
        rows = np.repeat(np.arange(len(ids)), [len(row) for row in ids])
        matrix = csr_matrix((np.ones(len(rows)), (rows, np.concatenate(ids))), shape=(len(ids), len(words)))
        return (matrix > 0).astype(np.float64)

    recipe = "recipes/imdb_cpu/finetune_scratch.yaml"
    raw = None  # the same files for every cell: read once
    for labels in (100, 1000):
        _, data_args, _ = parse_recipe([recipe, *FINETUNE_DATA, "--max_train_samples", str(labels)])
        raw = load_raw(data_args) if raw is None else raw
        for seed in (0, 1, 2):
            splits = prepare_splits(raw, data_args, seed, labeled=True)
            x_train, x_val = bag(splits.train["text"]), bag(splits.validation["text"])
            for c in (0.1, 1.0):
                model = LogisticRegression(C=c, max_iter=3000).fit(x_train, splits.train["label"])
                accuracy = float(model.score(x_val, splits.validation["label"]))
                row = {"name": f"ceiling/bow_labels{labels}_seed{seed}_C{c}", "eval_accuracy": accuracy}
                record(row, [PYTHON, "tools/imdb_cpu_design.py", "ceiling"])


STAGES = {
    "tokenizer": tokenizer,
    "throughput": throughput,
    "mlm": mlm,
    "finetune": finetune,
    "lstm_finetune": lstm_finetune,
    "ceiling": ceiling,
}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for stage in sys.argv[1:] or list(STAGES):
        STAGES[stage]()
