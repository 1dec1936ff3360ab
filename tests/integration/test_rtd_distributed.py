"""Replaced-token detection under two processes (torchrun, gloo, CPU) gives what one process gives."""

import json

import pytest

from tests.integration.launch import train_in_one_and_two_processes
from tests.tunekit.training.test_rtd import RTD, assert_close


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_ddp_matches_one_process(pretrain_argv, tmp_path):
    """torchrun + gloo on CPU: 2 processes x batch 4 must reach the weights of 1 process x batch 8."""
    common = [*pretrain_argv, *RTD, "--max_steps", "4", "--use_cpu", "true"]
    train_in_one_and_two_processes("pretrain.py", common, tmp_path)
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["num_processes"] == 2 and results["tokens_seen"] == 4 * 8 * 32
    assert_close(tmp_path / "one", tmp_path / "two", atol=1e-5)
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    for key in ("eval_loss", "eval_discriminator_accuracy", "eval_replaced_share"):
        assert results[key] == pytest.approx(one[key], abs=1e-4), key
