"""A run ends with a short block (loss, metrics, throughput, time, where things went), and each
evaluation is one console line when it is computed."""

import json
import logging

from tunekit.cli import run_script
from tunekit.training.summary import format_metrics, summary_lines
from tunekit.training.tasks import run_finetuning, run_pretraining

RESULTS = {
    "task": "sequence-classification",
    "eval_loss": 0.68426,
    "eval_accuracy": 0.55,
    "eval_f1": 0.4872,
    "test_loss": 0.7,
    "test_accuracy": 0.5,
    "train_loss": 0.747,
    "global_step": 10,
    "tokens_seen": 19962,
    "train_runtime": 43.64,
    "wall_time": 125.4,
    "tokens_per_second": 492.5,
    "examples_per_second": 3.95,
    "labels": ["negative", "positive"],
}


def test_metrics_are_named_without_their_split_loss_first():
    assert format_metrics(RESULTS, "eval") == "loss 0.6843, accuracy 0.5500, f1 0.4872"
    assert format_metrics(RESULTS, "test") == "loss 0.7000, accuracy 0.5000"
    assert format_metrics({"eval_loss": 6.49, "eval_perplexity": 658.9}) == (
        "eval_loss 6.4900, eval_perplexity 658.9000"
    )


def test_the_block_names_every_figure_and_path(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "README.md").write_text("card")
    text = "\n".join(summary_lines(RESULTS, tmp_path, pushed_url="https://hub.test/alice/x/commit/1"))
    assert "10 optimizer steps, 19,962 tokens" in text
    assert "final training loss  0.7470" in text
    assert "validation           loss 0.6843, accuracy 0.5500, f1 0.4872" in text
    assert "test                 loss 0.7000, accuracy 0.5000" in text
    assert "492.5 tokens/s, 3.95 examples/s" in text
    assert "2 min 05 s wall, 43.6 s training" in text
    assert f"{tmp_path}/ (model.safetensors, config, tokenizer)" in text
    assert f"model card           {tmp_path / 'README.md'}" in text
    assert str(tmp_path / "results.json") in text and "https://hub.test/alice/x/commit/1" in text


def test_a_run_without_a_saved_model_says_so(tmp_path):
    text = "\n".join(summary_lines({"global_step": 1}, tmp_path))
    assert "not saved" in text and "test " not in text and "model card" not in text


def _summary(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tunekit.training.summary"]


def test_a_finetuning_run_prints_its_evaluations_and_ends_with_test_metrics(finetune_argv, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    argv = [*finetune_argv, "--max_steps", "4", "--eval_steps", "2"]
    assert run_script(run_finetuning, argv) == 0
    results = json.loads((tmp_path / "finetune" / "results.json").read_text())
    lines = _summary(caplog)
    evaluations = [line for line in lines if line.startswith("step ")]
    assert [line.split(":")[0] for line in evaluations] == ["step 2", "step 4"]
    assert f"eval_accuracy {results['eval_accuracy']:.4f}" in evaluations[-1]
    block = "\n".join(lines[lines.index(next(x for x in lines if x.startswith("run finished"))) :])
    assert f"final training loss  {results['train_loss']:.4f}" in block
    assert (
        f"test                 loss {results['test_loss']:.4f}, accuracy {results['test_accuracy']:.4f}"
        in block
    )
    assert "examples/s" in block and str(tmp_path / "finetune" / "README.md") in block


def test_a_pretraining_run_ends_with_its_perplexity(pretrain_argv, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    assert run_script(run_pretraining, [*pretrain_argv, "--max_steps", "2"]) == 0
    results = json.loads((tmp_path / "pretrain" / "results.json").read_text())
    block = "\n".join(_summary(caplog))
    assert results["train_loss"] > 0
    assert f"validation           loss {results['eval_loss']:.4f}, perplexity" in block
    assert "tokens/s" in block and "test " not in block
