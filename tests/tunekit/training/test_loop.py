import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.training.checkpoint import list_checkpoints, resolve_checkpoint
from tunekit.training.tasks import run_finetuning, run_pretraining


def weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(output_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], atol=atol, rtol=0, msg=name)


def records(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def test_pretraining_loss_falls_and_outputs_describe_the_run(pretrain_argv, tmp_path):
    results = run_pretraining(
        *parse_recipe([*pretrain_argv, "--max_steps", "40", "--eval_steps", "20", "--learning_rate", "3e-3"])
    )
    out = tmp_path / "pretrain"
    losses = [r["loss"] for r in records(out) if "loss" in r]
    assert sum(losses[-5:]) / 5 < losses[0] - 0.3
    assert results["global_step"] == 40 and results["tokens_seen"] == 40 * 8 * 32
    assert results["eval_perplexity"] > 1 and results["num_parameters"] > 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "results.json"} <= {
        p.name for p in out.iterdir()
    }
    assert sum("eval_loss" in r for r in records(out)) == 2  # every 20 steps; the end coincides


def test_finetuning_learns_and_reports_test_metrics(finetune_argv):
    results = run_finetuning(
        *parse_recipe([*finetune_argv, "--num_train_epochs", "4", "--model_type", "lstm"])
    )
    assert results["global_step"] == 4 * 8 and results["train_examples"] == 64
    assert 0.0 <= results["test_accuracy"] <= 1.0 and "test_f1" in results and "eval_accuracy" in results


def test_gradient_accumulation_matches_one_big_batch(pretrain_argv, tmp_path):
    common = [*pretrain_argv, "--max_steps", "3", "--max_grad_norm", "0"]
    run_pretraining(*parse_recipe([*common, "--output_dir", str(tmp_path / "big")]))
    run_pretraining(
        *parse_recipe(
            [
                *common,
                "--output_dir",
                str(tmp_path / "accumulated"),
                "--per_device_train_batch_size",
                "2",
                "--gradient_accumulation_steps",
                "4",
            ]
        )
    )
    assert_same_weights(tmp_path / "big", tmp_path / "accumulated", atol=1e-5)


def tensorboard_loss_steps(output_dir: Path) -> list[int]:
    """The steps TensorBoard shows for the training loss, after any purge events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(output_dir / "runs" / "tunekit"))
    events.Reload()
    return [event.step for event in events.Scalars("loss")]


def test_a_resume_logs_each_step_once_in_metrics_and_tensorboard(pretrain_argv, tmp_path):
    """What a kill -9 at step 10 leaves when the newest checkpoint is step 4: steps 5-10 logged but
    not checkpointed. The resumed run trains them again; the logs must hold each step once."""
    pytest.importorskip("tensorboard")
    out = tmp_path / "pretrain"
    argv = [*pretrain_argv, "--max_steps", "10", "--save_steps", "4", "--report_to", "tensorboard"]
    run_pretraining(*parse_recipe([*argv, "--save_total_limit", "5"]))
    shutil.rmtree(out / "checkpoints" / "step_8")
    shutil.rmtree(out / "checkpoints" / "step_10", ignore_errors=True)
    (out / "results.json").unlink()
    assert [r["step"] for r in records(out) if "loss" in r] == list(range(1, 11))

    run_pretraining(*parse_recipe([*argv, "--resume_from_checkpoint", "latest"]))

    assert [r["step"] for r in records(out) if "loss" in r] == list(range(1, 11))
    assert [r["step"] for r in records(out) if "eval_loss" in r] == [10]
    assert tensorboard_loss_steps(out) == list(range(1, 11))


@pytest.mark.parametrize("task", ["finetune", "finetune_shuffled", "pretrain"])
def test_resume_mid_epoch_ends_with_the_same_weights(task, pretrain_argv, finetune_argv, tmp_path):
    """Fine-tuning batches are length-grouped by default; `finetune_shuffled` turns that off."""
    run = run_pretraining if task == "pretrain" else run_finetuning
    argv = [
        *(pretrain_argv if task == "pretrain" else finetune_argv),
        *(["--group_by_length", "false"] if task == "finetune_shuffled" else []),
        "--dropout",
        "0.1",
        "--max_steps",
        "12",
        "--save_steps",
        "4",
        "--save_total_limit",
        "5",
    ]
    run(*parse_recipe([*argv, "--output_dir", str(tmp_path / "full")]))
    checkpoint = tmp_path / "full" / "checkpoints" / "step_4"  # fine-tuning: 8 steps per epoch, so mid-epoch
    assert [p.name for p in list_checkpoints(tmp_path / "full")] == ["step_4", "step_8", "step_12"]
    run(
        *parse_recipe(
            [*argv, "--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", str(checkpoint)]
        )
    )
    assert_same_weights(tmp_path / "full", tmp_path / "resumed")
    assert records(tmp_path / "resumed")[0]["step"] == 5


def test_checkpoint_resolution_and_refusals(tmp_path, finetune_argv):
    (tmp_path / "run" / "checkpoints" / "step_9.tmp").mkdir(parents=True)  # a crash mid-write
    with pytest.raises(TunekitError, match="no checkpoint under"):
        resolve_checkpoint("latest", tmp_path / "run")
    with pytest.raises(TunekitError, match="not a tunekit checkpoint"):
        resolve_checkpoint(str(tmp_path), tmp_path)
    (tmp_path / "finetune").mkdir()
    (tmp_path / "finetune" / "precious.txt").write_text("keep")
    with pytest.raises(TunekitError, match="output_dir .* is not empty"):
        run_finetuning(*parse_recipe([*finetune_argv, "--max_steps", "1"]))
    assert (tmp_path / "finetune" / "precious.txt").read_text() == "keep"
