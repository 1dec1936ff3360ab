"""A crash or a full disk in the middle of a write leaves the previous file or checkpoint intact."""

import errno
import json
import os

import pytest
import torch

from tunekit.atomic import append_line, atomic_write_json, atomic_write_text, staged_files
from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.study.report import load_results
from tunekit.training.checkpoint import list_checkpoints, resolve_checkpoint
from tunekit.training.tasks import run_pretraining


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_atomic_write_keeps_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"accuracy": 0.9})
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(path, "{" + '"accuracy": 0.1, ' * 1000 + "}")
    assert json.loads(path.read_text()) == {"accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left behind


def test_staged_files_publish_all_or_nothing(tmp_path):
    target = tmp_path / "model"
    with staged_files(target) as staging:
        (staging / "config.json").write_text("{}")
    with pytest.raises(RuntimeError), staged_files(target) as staging:
        (staging / "model.safetensors").write_text("half")
        raise RuntimeError("killed while saving the tokenizer")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]


def test_a_results_line_cut_short_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    row = {"arm": "lstm_scratch", "budget": 8, "seed": 0, "test_accuracy": 0.5, "test_f1": 0.5}
    append_line(path, json.dumps(row))
    with path.open("a") as handle:
        handle.write(json.dumps(row)[:20])  # a kill mid-append
    assert load_results(path) == [row]
    assert "truncated last line" in caplog.text
    with pytest.raises(ValueError):
        append_line(path, "two\nlines")


def _run_until_second_checkpoint_fails(pretrain_argv, tmp_path, monkeypatch, failure):
    """Checkpoints every 2 steps; inside step_4's save_state, the optimizer write (after the model
    weights were written) fails."""
    import accelerate.checkpointing

    original = accelerate.checkpointing.save

    def failing_save(obj, path, *args, **kwargs):
        if "step_4" in str(path) and "optimizer" in str(path):
            failure()
        return original(obj, path, *args, **kwargs)

    monkeypatch.setattr(accelerate.checkpointing, "save", failing_save)
    argv = [*pretrain_argv, "--max_steps", "6", "--save_steps", "2", "--save_total_limit", "1"]
    run_pretraining(*parse_recipe(argv))


def test_a_crash_mid_checkpoint_leaves_latest_on_the_previous_one(pretrain_argv, tmp_path, monkeypatch):
    def crash():
        raise RuntimeError("simulated crash mid-save")

    with pytest.raises(RuntimeError, match="simulated crash"):
        _run_until_second_checkpoint_fails(pretrain_argv, tmp_path, monkeypatch, crash)
    output_dir = tmp_path / "pretrain"
    assert (output_dir / "checkpoints" / "step_4.tmp" / "model.safetensors").is_file()  # half written
    assert [p.name for p in list_checkpoints(output_dir)] == ["step_2"]
    assert resolve_checkpoint("latest", output_dir).name == "step_2"
    assert not (output_dir / "results.json").exists()


def test_a_full_disk_mid_checkpoint_says_so_and_keeps_the_previous_one(pretrain_argv, tmp_path, monkeypatch):
    with pytest.raises(
        TunekitError, match=r"step_4 \(disk full\); the previous checkpoint .*step_2 is intact"
    ):
        _run_until_second_checkpoint_fails(pretrain_argv, tmp_path, monkeypatch, disk_full)
    output_dir = tmp_path / "pretrain"
    assert resolve_checkpoint("latest", output_dir).name == "step_2"
    assert (output_dir / "checkpoints" / "step_2" / "model.safetensors").is_file()
    assert not (output_dir / "checkpoints" / "step_4.tmp").exists()  # the partial write is cleaned up


@pytest.fixture
def umask_027():
    """A umask other than the usual 022, so the check cannot pass by a coincidence of defaults."""
    previous = os.umask(0o027)
    yield 0o640
    os.umask(previous)


def test_every_writer_gives_the_mode_a_plain_open_gives(tmp_path, umask_027):
    from safetensors.torch import save_file

    atomic_write_json(tmp_path / "results.json", {"accuracy": 0.9})
    with staged_files(tmp_path / "model") as staging:
        save_file({"weight": torch.zeros(2)}, str(staging / "model.safetensors"))  # safetensors writes 0600
        (staging / "sub").mkdir()
        (staging / "sub" / "config.json").write_text("{}")
    written = [tmp_path / "results.json", tmp_path / "model" / "model.safetensors"]
    written.append(tmp_path / "model" / "sub" / "config.json")
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in written} == {
        path.name: oct(umask_027) for path in written
    }


def test_a_run_writes_its_files_with_the_umask_mode(pretrain_argv, tmp_path, monkeypatch):
    previous = os.umask(0o022)
    try:
        run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "2", "--save_steps", "1"]))
    finally:
        os.umask(previous)
    output_dir = tmp_path / "pretrain"
    files = [path for path in output_dir.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"model.safetensors", "README.md", "results.json", "recipe.yaml", "progress.json"} <= names
    assert {str(p.relative_to(output_dir)): oct(p.stat().st_mode & 0o777) for p in files} == {
        str(p.relative_to(output_dir)): "0o644" for p in files
    }
