"""The document-words objective under two processes (torchrun, gloo, CPU) gives what one process gives."""

import json

import pytest

from tests.integration.launch import train_in_one_and_two_processes
from tests.tunekit.training.test_document_words import DBOW, assert_close
from tests.tunekit.training.test_loop import records


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_ddp_matches_one_process(pretrain_argv, tmp_path):
    """torchrun + gloo on CPU: 2 processes x batch 4 must reach the weights of 1 process x batch 8."""
    common = [*pretrain_argv, *DBOW, "--max_steps", "4", "--use_cpu", "true"]
    train_in_one_and_two_processes("pretrain.py", common, tmp_path)
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["num_processes"] == 2 and two["task"] == "document-words"
    assert two["tokens_seen"] == one["tokens_seen"]  # the same documents, split between the processes
    losses = [[r["loss"] for r in records(tmp_path / name) if "loss" in r] for name in ("one", "two")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    # The head's dense layer sees one pooled row per document, so its gradient is small and Adam's
    # normalised step magnifies the summation-order differences of the all-reduce: ~1e-5 after 4 steps.
    assert_close(tmp_path / "one", tmp_path / "two", atol=5e-5)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], abs=1e-4)
