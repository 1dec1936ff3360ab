"""The catalogue of bad inputs: each gives exit status 2, one `error:` line naming the field or
file and what was expected, no traceback, and leaves every file already on disk as it was.

Cases run in-process through `tunekit.cli.run_script`, the entry the scripts use; a few run the
real scripts as subprocesses. README.md's "When something is wrong" table lists the same messages.
"""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tunekit.cli import run_script
from tunekit.tasks import run_finetuning, run_pretraining

from .conftest import QUIET, REPO, TINY_MODEL, TINY_RECIPE

DEFAULT_RECIPES = {
    "pretrain": str(REPO / "recipes" / "tiny" / "pretrain.yaml"),
    "finetune": str(REPO / "recipes" / "tiny" / "finetune_pretrained.yaml"),
}
TINY_FLAGS = [*TINY_MODEL, *QUIET, "--max_seq_length", "32"]
TASKS = {"pretrain": run_pretraining, "finetune": run_finetuning}
POSITIVE = ["a fine film", "great acting", "loved every minute", "a warm story", "good fun"]
NEGATIVE = ["a dull film", "poor acting", "hated every minute", "a cold story", "no fun"]


def labeled_rows(count: int = 40) -> list[tuple[str, str]]:
    return [
        (f"{(POSITIVE if i % 2 else NEGATIVE)[i % 5]} number {i}", "pos" if i % 2 else "neg")
        for i in range(count)
    ]


def csv_text(rows: list[tuple[str, str]], header: str = "text,label") -> str:
    return header + "\n" + "".join(f"{text},{label}\n" for text, label in rows)


def jsonl_text(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


class Workspace:
    """A directory with valid data and recipes; each case spoils one thing."""

    def __init__(self, root: Path, model_dir: Path) -> None:
        self.root, self.model = root, str(model_dir)
        self.labeled = self.write("train.csv", csv_text(labeled_rows()))
        self.text = self.write("text.txt", "".join(f"{t} and more words here\n" for t, _ in labeled_rows(60)))
        self.out = str(root / "out")
        self.existing = root / "existing_run"
        self.existing.mkdir()
        (self.existing / "sentinel.txt").write_text("an earlier run's results\n")

    def write(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    def recipe(self, name: str = "recipe.yaml", **values: object) -> str:
        base = {**TINY_RECIPE, "max_seq_length": 32, "max_steps": 1, "output_dir": self.out}
        return self.write(name, yaml.safe_dump({**base, **values}))

    def finetune(self, *extra: str, train: str | None = None, **values: object) -> list[str]:
        return [self.recipe(train_file=[train or self.labeled], **values), *extra]

    def pretrain(self, *extra: str, train: str | None = None, **values: object) -> list[str]:
        return [self.recipe(train_file=[train or self.text], **values), *extra]


@dataclass(frozen=True)
class Case:
    id: str
    script: str  # "pretrain" or "finetune"
    argv: Callable[[Workspace], list[str]]
    expected: str  # words the one error line must contain
    default_recipe: bool = False  # run without a recipe argument, as `python scripts/x.py --flags`
    patch: Callable[[pytest.MonkeyPatch], None] | None = None  # simulate what a test machine cannot be


def tiny_model_copy(w: Workspace, spoil: Callable[[Path], None]) -> str:
    copy = w.root / "model_copy"
    shutil.copytree(w.model, copy)
    spoil(copy)
    return str(copy)


def fake_run_to_resume(w: Workspace, **recipe_changes: object) -> str:
    """An output dir as a killed run leaves it: its recipe and one checkpoint."""
    from tunekit.config import parse_recipe, save_recipe

    configs = parse_recipe([w.recipe("earlier.yaml", train_file=[w.labeled], **recipe_changes)])
    run = Path(w.out)
    (run / "checkpoints" / "step_1").mkdir(parents=True)
    (run / "checkpoints" / "step_1" / "progress.json").write_text("{}")
    save_recipe(run / "recipe.yaml", *configs)
    return w.out


def half_a_gzip() -> bytes:
    whole = gzip.compress("".join(f"line {i} of a download cut short\n" for i in range(2000)).encode())
    return whole[: len(whole) // 2]


F, P = "finetune", "pretrain"
CASES = [
    # --- the recipe and the command line
    Case("recipe-missing", F, lambda w: [str(w.root / "nope.yaml")], "recipe not found: "),
    Case("recipe-is-a-directory", F, lambda w: [str(w.root)], "is a directory; expected a YAML file"),
    Case(
        "yaml-syntax-error",
        F,
        lambda w: [w.write("r.yaml", "seed: 1\nlearning_rate: 1e-3\nmax_steps: [1, 2\n")],
        "not valid YAML at line 4",
    ),
    Case("yaml-not-a-mapping", F, lambda w: [w.write("r.yaml", "- seed\n- 1\n")], "a recipe is a mapping"),
    Case("recipe-not-utf8", F, lambda w: [w.write("r.yaml", b"seed: 1 # caf\xe9\n")], "is not UTF-8 text"),
    Case(
        "yaml-unknown-key",
        F,
        lambda w: [w.recipe(lerning_rate=1e-3)],
        "unknown key 'lerning_rate' (did you mean 'learning_rate'?)",
    ),
    Case("cli-unknown-flag", F, lambda w: w.finetune("--warmup", "3"), "unknown argument '--warmup'"),
    Case(
        "yaml-wrong-type", F, lambda w: [w.recipe(max_steps="ten")], "--max_steps: invalid int value: 'ten'"
    ),
    Case(
        "cli-wrong-type",
        F,
        lambda w: w.finetune("--learning_rate", "fast"),
        "--learning_rate: invalid float value: 'fast'",
    ),
    Case(
        "cli-bad-choice",
        F,
        lambda w: w.finetune("--lr_scheduler_type", "warm"),
        "--lr_scheduler_type: invalid choice: 'warm'",
    ),
    Case(
        "zero-batch-size",
        F,
        lambda w: w.finetune("--per_device_train_batch_size", "0"),
        "per_device_train_batch_size must be positive, got 0",
    ),
    Case(
        "negative-learning-rate",
        F,
        lambda w: w.finetune("--learning_rate", "-1e-3"),
        "learning_rate must be positive, got -0.001",
    ),
    Case(
        "zero-learning-rate",
        P,
        lambda w: w.pretrain("--learning_rate", "0"),
        "learning_rate must be positive",
    ),
    Case("zero-max-steps", P, lambda w: w.pretrain("--max_steps", "0"), "max_steps must be positive"),
    Case(
        "negative-epochs",
        F,
        lambda w: w.finetune("--max_steps", "-1", "--num_train_epochs", "-2"),
        "num_train_epochs must be positive",
    ),
    Case(
        "zero-gradient-accumulation",
        F,
        lambda w: w.finetune("--gradient_accumulation_steps", "0"),
        "gradient_accumulation_steps must be positive",
    ),
    Case("zero-eval-samples", F, lambda w: w.finetune("--max_eval_samples", "0"), "max_eval_samples must be"),
    # --- data files
    Case(
        "csv-4-rows-string-labels",
        F,
        lambda w: w.finetune(train=w.write("small.csv", csv_text(labeled_rows(4)))),
        "4 examples are too few to carve a 10% validation split of 2 classes",
    ),
    Case(
        "csv-4-rows-utf8-bom",
        F,
        lambda w: w.finetune(train=w.write("bom.csv", "\ufeff" + csv_text(labeled_rows(4)))),
        "4 examples are too few to carve",
    ),
    Case(
        "jsonl-null-text",
        F,
        lambda w: w.finetune(
            train=w.write(
                "null.jsonl",
                jsonl_text(
                    [{"text": t, "label": lab} for t, lab in labeled_rows(20)]
                    + [{"text": None, "label": "pos"}]
                ),
            )
        ),
        "1 of 21 rows have a null or empty 'text'",
    ),
    Case(
        "csv-blank-text",
        F,
        lambda w: w.finetune(train=w.write("blank.csv", csv_text([*labeled_rows(20), ("  ", "pos")]))),
        "1 of 21 rows have a null or empty 'text'",
    ),
    Case(
        "corrupt-gzip",
        F,
        lambda w: w.finetune(train=w.write("bad.jsonl.gz", b"\x1f\x8b\x08\x00garbage" * 20)),
        "bad.jsonl.gz is not a readable gzip file",
    ),
    Case(
        "not-gzip-at-all",
        P,
        lambda w: w.pretrain(train=w.write("plain.txt.gz", "just text, never compressed\n")),
        "plain.txt.gz is not a readable gzip file",
    ),
    Case(
        "truncated-gzip",
        P,
        lambda w: w.pretrain(train=w.write("cut.txt.gz", half_a_gzip())),
        "cut.txt.gz is not a readable gzip file",
    ),
    Case(
        "csv-not-utf8",
        F,
        lambda w: w.finetune(
            train=w.write("latin1.csv", csv_text(labeled_rows()).encode() + b"caf\xe9,pos\n")
        ),
        "latin1.csv is not UTF-8 text (byte 0xe9",
    ),
    Case("empty-file", F, lambda w: w.finetune(train=w.write("empty.csv", "")), "empty.csv is empty"),
    Case(
        "csv-header-only", F, lambda w: w.finetune(train=w.write("head.csv", "text,label\n")), "holds no rows"
    ),
    Case(
        "empty-validation-file",
        F,
        lambda w: w.finetune(validation_file=w.write("val.csv", "text,label\n")),
        "validation_file",
    ),
    Case(
        "pretraining-text-all-null",
        P,
        lambda w: w.pretrain(train=w.write("nulls.jsonl", jsonl_text([{"text": None}] * 5))),
        "holds no rows",
    ),
    Case(
        "missing-text-column",
        F,
        lambda w: w.finetune(text_column="review"),
        "text_column 'review' not in train_file",
    ),
    Case(
        "missing-label-column",
        F,
        lambda w: w.finetune(label_column="sentiment"),
        "label_column 'sentiment' not in train_file",
    ),
    Case(
        "unsupported-file-type",
        F,
        lambda w: w.finetune(train=w.write("d.xlsx", "x")),
        "unsupported file type",
    ),
    Case(
        "train-file-missing",
        F,
        lambda w: w.finetune(train=str(w.root / "gone.csv")),
        "train_file: no such file",
    ),
    Case(
        "validation-file-missing",
        F,
        lambda w: w.finetune(validation_file=str(w.root / "gone.csv")),
        "validation_file: no such file",
    ),
    Case(
        "train-file-is-a-directory",
        F,
        lambda w: w.finetune(train=_mkdir(w.root / "folder.csv")),
        "is a directory; expected a data file",
    ),
    Case(
        "mixed-file-types",
        F,
        lambda w: [w.recipe(train_file=[w.labeled, w.text])],
        "train_file: mixes file types",
    ),
    Case(
        "dataset-split-missing",
        P,
        lambda w: [w.recipe(dataset_name="synthetic", train_split="unsupervised")],
        "train_split: no split ['unsupervised']",
        patch=lambda mp: mp.setattr("tunekit.data._synthetic", _small_synthetic_corpus),
    ),
    Case(
        "string-labels-not-label-names",
        F,
        lambda w: w.finetune("--label_names", "negative", "positive"),
        "labels ['neg', 'pos'] are not among the classes ['negative', 'positive']",
    ),
    Case(
        "int-labels-out-of-range",
        F,
        lambda w: w.finetune(
            "--label_names",
            "negative",
            "positive",
            train=w.write(
                "ids.jsonl",
                jsonl_text([{"text": t, "label": i % 3} for i, (t, _) in enumerate(labeled_rows())]),
            ),
        ),
        "labels [0, 1, 2] are out of range; expected the 2 label_names",
    ),
    Case(
        "negative-int-labels",
        F,
        lambda w: w.finetune(
            train=w.write(
                "neg.jsonl",
                jsonl_text(
                    [{"text": t, "label": -1 if i % 2 else 0} for i, (t, _) in enumerate(labeled_rows())]
                ),
            )
        ),
        "labels [-1, 0] are out of range; expected ids 0..K-1",
    ),
    Case(
        "float-labels",
        F,
        lambda w: w.finetune(
            train=w.write(
                "f.jsonl",
                jsonl_text([{"text": t, "label": 0.5 * (i % 2)} for i, (t, _) in enumerate(labeled_rows())]),
            )
        ),
        "label_column 'label' in train_file",
    ),
    Case(
        "null-labels",
        F,
        lambda w: w.finetune(
            train=w.write(
                "nl.jsonl",
                jsonl_text(
                    [{"text": t, "label": lab} for t, lab in labeled_rows()] + [{"text": "x", "label": None}]
                ),
            )
        ),
        "1 rows have a null 'label'",
    ),
    Case(
        "single-class",
        F,
        lambda w: w.finetune(train=w.write("one.csv", csv_text([(t, "pos") for t, _ in labeled_rows()]))),
        "classification needs at least 2 classes",
    ),
    Case(
        "validation-label-unknown",
        F,
        lambda w: w.finetune(validation_file=w.write("v.csv", csv_text([("so so", "meh"), ("fine", "pos")]))),
        "labels ['meh'] are not among the classes ['neg', 'pos']",
    ),
    Case(
        "budget-larger-than-data",
        F,
        lambda w: w.finetune("--max_train_samples", "500"),
        "max_train_samples=500 is more than the 36 training examples",
    ),
    Case(
        "budget-smaller-than-classes",
        F,
        lambda w: w.finetune("--max_train_samples", "1"),
        "max_train_samples=1 is smaller than the number of classes (2)",
    ),
    Case(
        "pretraining-text-too-small-to-carve",
        P,
        lambda w: w.pretrain(train=w.write("one.txt", "a single line of text\n")),
        "1 examples are too few to carve",
    ),
    Case(
        "dataset-hub-name-offline",
        F,
        lambda w: [w.recipe(dataset_name="no-such/dataset")],
        "dataset_name 'no-such/dataset' could not be loaded",
    ),
    # --- models and tokenizers
    Case(
        "model-dir-missing",
        F,
        lambda w: w.finetune("--model_name_or_path", "/path/that/does/not/exist"),
        "model_name_or_path: no such directory /path/that/does/not/exist",
    ),
    Case(
        "default-recipe-without-pretraining",
        F,
        lambda w: ["--train_file", w.labeled],
        "the default recipe fine-tunes outputs/tiny/pretrain: run scripts/pretrain.py first, "
        "or pass --model_name_or_path / --model_type",
        default_recipe=True,
    ),
    Case(
        "model-dir-is-empty-directory",
        F,
        lambda w: w.finetune("--model_name_or_path", tiny_model_copy(w, _empty_dir)),
        "is an empty directory",
    ),
    Case(
        "model-path-is-a-file",
        F,
        lambda w: w.finetune("--model_name_or_path", w.labeled),
        "train.csv is a file; expected a directory written by save_pretrained",
    ),
    Case(
        "model-dir-without-config",
        F,
        lambda w: w.finetune(
            "--model_name_or_path", tiny_model_copy(w, lambda d: (d / "config.json").unlink())
        ),
        "has no config.json",
    ),
    Case(
        "model-config-corrupt",
        F,
        lambda w: w.finetune(
            "--model_name_or_path", tiny_model_copy(w, lambda d: (d / "config.json").write_text("{oops"))
        ),
        "not a valid JSON file",
    ),
    Case(
        "model-weights-corrupt",
        F,
        lambda w: w.finetune(
            "--model_name_or_path",
            tiny_model_copy(w, lambda d: (d / "model.safetensors").write_bytes(b"not weights" * 8)),
        ),
        "model_name_or_path: cannot load",
    ),
    Case(
        "model-of-another-type",
        F,
        lambda w: w.finetune("--model_name_or_path", w.model, "--model_type", "bert"),
        "holds a modernbert model but model_type is bert",
    ),
    Case(
        "model-hub-name-offline",
        F,
        lambda w: w.finetune("--model_name_or_path", "someone/tiny-model"),
        "HF_HUB_OFFLINE=1 rules out fetching it",
    ),
    Case(
        "tokenizer-dir-missing",
        F,
        lambda w: w.finetune("--tokenizer_name_or_path", str(w.root / "no_tokenizer")),
        "tokenizer_name_or_path: no such directory",
    ),
    Case(
        "block-longer-than-positions",
        F,
        lambda w: w.finetune("--max_seq_length", "128"),
        "max_seq_length=128 is longer than max_position_embeddings allows (64)",
    ),
    Case(
        "block-longer-than-pretrained-positions",
        P,
        lambda w: w.pretrain("--model_name_or_path", w.model, "--max_seq_length", "96"),
        "max_seq_length=96 is longer than the model at",
    ),
    Case(
        "tokenizer-larger-than-embeddings",
        F,
        lambda w: w.finetune("--model_name_or_path", w.model, "--tokenizer_name_or_path", _big_tokenizer(w)),
        "the model embeds only",
    ),
    # --- device, output directory, resume
    Case(
        "fp16-on-cpu",
        F,
        lambda w: w.finetune("--mixed_precision", "fp16"),
        "mixed_precision=fp16 needs a GPU",
    ),
    Case(
        "output-dir-not-empty",
        F,
        lambda w: w.finetune("--output_dir", str(w.existing)),
        "is not empty; pass --overwrite_output_dir true",
    ),
    Case(
        "output-dir-is-a-file",
        F,
        lambda w: w.finetune("--output_dir", w.labeled),
        "train.csv is a file; expected a directory",
    ),
    Case(
        "output-dir-under-a-file",
        P,
        lambda w: w.pretrain("--output_dir", w.labeled + "/run"),
        "cannot create it",
    ),
    Case(
        "output-dir-read-only",
        F,
        lambda w: w.finetune(),
        "cannot write to",
        # Root ignores permission bits, so the read-only disk is simulated where the probe writes.
        patch=lambda mp: mp.setattr("tunekit.preflight.tempfile.TemporaryFile", _read_only),
    ),
    Case(
        "resume-without-checkpoint",
        F,
        lambda w: w.finetune("--resume_from_checkpoint", "latest"),
        "resume_from_checkpoint=latest: no checkpoint under",
    ),
    Case(
        "resume-from-non-checkpoint",
        F,
        lambda w: w.finetune("--resume_from_checkpoint", str(w.existing)),
        "is not a tunekit checkpoint",
    ),
    Case(
        "resume-with-changed-recipe",
        F,
        lambda w: [
            w.recipe(
                train_file=[w.labeled],
                learning_rate=2e-3,
                output_dir=fake_run_to_resume(w, learning_rate=1e-3),
            ),
            "--resume_from_checkpoint",
            "latest",
        ],
        "the recipe differs from the run being resumed in learning_rate (0.001 -> 0.002)",
    ),
]


def _small_synthetic_corpus(seed: int) -> object:
    from tunekit.synthetic import build_synthetic_corpus

    return build_synthetic_corpus(seed=seed, num_unlabeled=20, num_train=20, num_validation=4, num_test=4)


def _read_only(*args: object, **kwargs: object) -> None:
    raise PermissionError(13, "Permission denied")


def _mkdir(path: Path) -> str:
    path.mkdir()
    return str(path)


def _empty_dir(model_dir: Path) -> None:
    for path in model_dir.iterdir():
        path.unlink()


def _big_tokenizer(w: Workspace) -> str:
    from tunekit.tokenizer_training import train_wordpiece

    words = " ".join(f"word{i}" for i in range(2000))
    tokenizer = train_wordpiece([words], vocab_size=1000, model_max_length=64)
    tokenizer.save_pretrained(w.root / "big_tokenizer")
    return str(w.root / "big_tokenizer")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny MLM with its tokenizer, built directly (no training needed to be loadable)."""
    from transformers import AutoModelForMaskedLM

    from tunekit.config import ModelArguments
    from tunekit.models import transformer_config
    from tunekit.tokenizer_training import train_wordpiece

    texts = [text for text, _ in labeled_rows(100)]
    tokenizer = train_wordpiece(texts, vocab_size=200, model_max_length=64)
    model_args = ModelArguments(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = AutoModelForMaskedLM.from_config(transformer_config(model_args, tokenizer))
    path = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def snapshot(*roots: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_the_catalogue_has_at_least_30_distinct_cases():
    assert len({case.id for case in CASES}) == len(CASES) >= 30
    assert len({case.expected for case in CASES}) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_harms_nothing(
    case, tmp_path, tiny_model, monkeypatch, capsys, quiet_datasets
):
    monkeypatch.chdir(tmp_path)  # relative defaults (outputs/tiny/pretrain) resolve inside the test
    monkeypatch.delenv("TUNEKIT_DEBUG", raising=False)
    workspace = Workspace(tmp_path / "work", tiny_model)
    argv = case.argv(workspace)
    if case.patch:
        case.patch(monkeypatch)
    before = snapshot(tmp_path, tiny_model)
    capsys.readouterr()

    status = run_script(
        TASKS[case.script], argv, DEFAULT_RECIPES[case.script] if case.default_recipe else None
    )

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert case.expected in lines[0]
    assert snapshot(tmp_path, tiny_model) == before, "a failed run changed files on disk"


def run_script_process(script: str, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env},
        timeout=300,
        cwd=REPO,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        (
            "finetune.py",
            ["--model_name_or_path", "/path/that/does/not/exist"],
            "error: model_name_or_path: no such directory /path/that/does/not/exist",
        ),
        ("pretrain.py", ["recipes/tiny"], "error: recipe recipes/tiny is a directory; expected a YAML file"),
    ],
    ids=["missing-model-dir", "directory-as-recipe"],
)
def test_the_scripts_print_one_error_line_and_exit_2(script, argv, expected):
    result = run_script_process(script, *argv)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[-1]]
    assert result.stderr.strip().startswith(expected), result.stderr


def test_tunekit_debug_env_adds_the_traceback(tmp_path):
    result = run_script_process("pretrain.py", str(tmp_path / "missing.yaml"), TUNEKIT_DEBUG="1")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr and "TunekitError" in result.stderr
    assert error_lines(result.stderr) == [f"error: recipe not found: {tmp_path / 'missing.yaml'}"]
    assert result.stderr.strip().splitlines()[-1].startswith("error: recipe not found")


def test_debug_flag_adds_the_traceback_and_is_no_recipe_field(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TUNEKIT_DEBUG", raising=False)
    missing = str(tmp_path / "missing.yaml")
    assert run_script(run_pretraining, [missing, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == f"error: recipe not found: {missing}"
    assert run_script(run_pretraining, [missing]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_bf16_on_a_gpu_without_it_is_refused(monkeypatch):
    import torch

    from tunekit.errors import TunekitError
    from tunekit.preflight import check_mixed_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(TunekitError, match="mixed_precision=bf16: Tesla T4 has no bf16"):
        check_mixed_precision("bf16", torch.device("cuda", 0))
    check_mixed_precision("bf16", torch.device("cpu"))  # CPUs run bf16 autocast
    check_mixed_precision("no", torch.device("cpu"))


def test_an_empty_recipe_says_the_defaults_are_used(tmp_path, caplog):
    from tunekit.config import parse_recipe

    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set yet\n")
    with caplog.at_level("INFO", logger="tunekit.config"):
        model_args, _, train_args = parse_recipe([str(empty)])
    assert train_args.learning_rate == 5e-4 and model_args.model_type == "modernbert"
    assert [r.getMessage() for r in caplog.records] == [
        f"recipe {empty} is empty: every field takes its default"
    ]


def test_pretrain_default_recipe_with_a_file_trains_on_the_file(tmp_path, monkeypatch, quiet_datasets):
    # The default recipe names the synthetic corpus's 'unlabeled' split; given a file, the file is the data.
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "my.jsonl"
    text.write_text(jsonl_text([{"text": f"{t} and then some more words"} for t, _ in labeled_rows(80)]))
    argv = ["--train_file", str(text), *TINY_FLAGS, "--max_steps", "1", "--output_dir", str(tmp_path / "out")]
    assert run_script(run_pretraining, argv, DEFAULT_RECIPES["pretrain"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["global_step"] == 1 and results["train_blocks"] > 0


def test_finetune_default_recipe_with_model_type_trains_that_type_from_scratch(
    tmp_path, monkeypatch, quiet_datasets
):
    monkeypatch.chdir(tmp_path)  # no outputs/tiny/pretrain here
    argv = ["--train_file", str(Path(Workspace(tmp_path / "w", tmp_path).labeled)), *TINY_FLAGS]
    argv += ["--max_train_samples", "20", "--max_steps", "1", "--output_dir", str(tmp_path / "out")]
    assert run_script(run_finetuning, argv, DEFAULT_RECIPES["finetune"]) == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["init"] == "scratch"


def test_readme_lists_every_catalogue_message():
    readme = (REPO / "README.md").read_text()
    missing = [
        case.id for case in CASES if f"| {case.id.replace('-', ' ')} | `{case.expected}` |" not in readme
    ]
    assert not missing, f"README's 'When something is wrong' table lacks {missing}"
