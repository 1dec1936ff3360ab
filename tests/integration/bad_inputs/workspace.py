"""What every bad-input case builds on: a workspace of valid data and recipes that a case spoils
one thing of, the Case record, and the helpers the cases call."""

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_RECIPE

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


def gzip_corrupt_past_probe() -> bytes:
    """A gzip file whose first 4 MB (what check_file reads) decompress fine and whose damage lies
    beyond: stored blocks (level 0) turn a flipped byte into a bad byte of text, not a zlib error, so
    only the stream's CRC tells, as with a download corrupted late in the file."""
    text = "".join(f"line {i} of a long corpus, damaged near its end\n" for i in range(110_000))
    damaged = bytearray(gzip.compress(text.encode(), compresslevel=0))
    assert len(damaged) > 5 << 20  # past check_file's 4 MB probe
    damaged[int(len(damaged) * 0.9)] = 0xFF
    return bytes(damaged)


F, P = "finetune", "pretrain"


def small_synthetic_corpus(seed: int) -> object:
    from tunekit.data.synthetic import build_synthetic_corpus

    return build_synthetic_corpus(seed=seed, num_unlabeled=20, num_train=20, num_validation=4, num_test=4)


def refuse_write(*args: object, **kwargs: object) -> None:
    raise PermissionError(13, "Permission denied")


def make_dir(path: Path) -> str:
    path.mkdir()
    return str(path)


def empty_dir(model_dir: Path) -> None:
    for path in model_dir.iterdir():
        path.unlink()


def big_tokenizer(w: Workspace) -> str:
    from tunekit.data.tokenizer_training import train_wordpiece

    words = " ".join(f"word{i}" for i in range(2000))
    tokenizer = train_wordpiece([words], vocab_size=1000, model_max_length=64)
    tokenizer.save_pretrained(w.root / "big_tokenizer")
    return str(w.root / "big_tokenizer")
