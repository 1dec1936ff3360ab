"""The catalogue of bad inputs: each gives exit status 2, one `error:` line naming the field or
file and what was expected, no traceback, and leaves every file already on disk as it was.

Cases run in-process through `tunekit.cli.run_script`, the entry the scripts use; a few run the
real scripts as subprocesses. docs/errors.md (linked from the README) lists the same messages.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUIET, REPO, TINY_MODEL, TINY_SIZES
from tests.processes import run_bounded
from tunekit.cli import run_script
from tunekit.training.tasks import run_finetuning, run_pretraining

from .data_cases import DATA_CASES
from .model_cases import MODEL_AND_RUN_CASES
from .recipe_cases import RECIPE_CASES
from .workspace import Workspace, jsonl_text, labeled_rows

DEFAULT_RECIPES = {
    "pretrain": str(REPO / "recipes" / "tiny" / "pretrain.yaml"),
    "finetune": str(REPO / "recipes" / "tiny" / "finetune_pretrained.yaml"),
}
TINY_FLAGS = [*TINY_MODEL, *QUIET, "--max_seq_length", "32"]
TASKS = {"pretrain": run_pretraining, "finetune": run_finetuning}
CASES = [*RECIPE_CASES, *DATA_CASES, *MODEL_AND_RUN_CASES]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny MLM with its tokenizer, built directly (no training needed to be loadable)."""
    from transformers import AutoModelForMaskedLM

    from tunekit.config import ModelArguments
    from tunekit.data.tokenizer_training import train_wordpiece
    from tunekit.models.build import transformer_config

    texts = [text for text, _ in labeled_rows(100)]
    tokenizer = train_wordpiece(texts, vocab_size=200, model_max_length=64)
    model_args = ModelArguments(**TINY_SIZES, max_position_embeddings=64)
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
    return run_bounded(
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
    from tunekit.training.preflight import check_mixed_precision

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


def test_the_error_catalogue_page_lists_every_catalogue_message():
    readme = (REPO / "docs" / "errors.md").read_text()
    missing = [
        case.id for case in CASES if f"| {case.id.replace('-', ' ')} | `{case.expected}` |" not in readme
    ]
    assert not missing, f"docs/errors.md's table lacks {missing}"


def test_a_resume_with_another_shape_is_one_line_on_every_path(
    pretrain_argv, tmp_path, capsys, quiet_datasets
):
    """A real checkpoint, resumed with hidden_size 32 -> 64: in place, into a new output_dir, and from a
    checkpoint copied away from its run's recipe.yaml (it carries its own). Each is refused by the recipe
    comparison, before anything is written: the run is unchanged and no new output_dir is left behind."""
    import shutil

    first = tmp_path / "pretrain"
    assert run_script(run_pretraining, [*pretrain_argv, "--max_steps", "2", "--save_steps", "1"]) == 0
    checkpoint = first / "checkpoints" / "step_2"
    loose = tmp_path / "copied" / "step_2"
    shutil.copytree(checkpoint, loose)
    assert not (loose.parent.parent / "recipe.yaml").exists()
    wider = [*pretrain_argv, "--max_steps", "3", "--hidden_size", "64"]
    paths = {
        "in place": ([*wider, "--resume_from_checkpoint", "latest"], first),
        "new output_dir": (
            [*wider, "--resume_from_checkpoint", str(checkpoint), "--output_dir", str(tmp_path / "new")],
            tmp_path / "new",
        ),
        "copied checkpoint": (
            [*wider, "--resume_from_checkpoint", str(loose), "--output_dir", str(tmp_path / "other")],
            tmp_path / "other",
        ),
        "copied checkpoint into an existing empty output_dir": (
            [*wider, "--resume_from_checkpoint", str(loose), "--output_dir", str(tmp_path / "empty")],
            tmp_path / "empty",
        ),
    }
    (tmp_path / "empty").mkdir()
    for name, (argv, output_dir) in paths.items():
        before, output_before = snapshot(first), snapshot(output_dir) if output_dir.exists() else None
        capsys.readouterr()
        assert run_script(run_pretraining, argv) == 2, name
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: resume_from_checkpoint: "), (name, err)
        assert "hidden_size (32 -> 64)" in lines[0], (name, lines[0])
        assert snapshot(first) == before, name
        if output_before is None:
            assert not output_dir.exists(), (name, list(output_dir.rglob("*")))
        else:
            assert snapshot(output_dir) == output_before, name


def test_a_checkpoint_without_any_recipe_is_refused_at_load_in_one_line(
    pretrain_argv, tmp_path, capsys, quiet_datasets
):
    """A checkpoint with no recipe.yaml anywhere (written before checkpoints carried theirs, then copied
    away from its run) has nothing to compare before loading: the load names the mismatch instead."""
    import shutil

    first = tmp_path / "pretrain"
    assert run_script(run_pretraining, [*pretrain_argv, "--max_steps", "2", "--save_steps", "2"]) == 0
    loose = tmp_path / "copied" / "step_2"
    shutil.copytree(first / "checkpoints" / "step_2", loose)
    (loose / "recipe.yaml").unlink()
    argv = [*pretrain_argv, "--max_steps", "3", "--hidden_size", "64"]
    argv += ["--resume_from_checkpoint", str(loose), "--output_dir", str(tmp_path / "other")]
    capsys.readouterr()
    assert run_script(run_pretraining, argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: resume_from_checkpoint: "), lines
    assert "holds a model of another shape (size mismatch for" in lines[0]
    # Refused before its first step: the tokenizer and recipe.yaml it had written went with it.
    assert not (tmp_path / "other").exists()
    # Into a directory the user already had: what it held stays, and only that.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's")
    argv[-1] = str(kept)
    assert run_script(run_pretraining, argv) == 2
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]
