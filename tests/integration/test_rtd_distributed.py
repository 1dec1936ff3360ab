"""Replaced-token detection under two processes (torchrun, gloo, CPU) gives what one process gives."""

import json
import os
import sys

import pytest

from tests.conftest import REPO
from tests.integration.test_distributed import _free_port
from tests.processes import run_bounded
from tests.tunekit.training.test_rtd import RTD, assert_close


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_ddp_matches_one_process(pretrain_argv, tmp_path):
    """torchrun + gloo on CPU: 2 processes x batch 4 must reach the weights of 1 process x batch 8."""
    common = [*pretrain_argv, *RTD, "--max_steps", "4", "--use_cpu", "true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = str(REPO / "scripts" / "pretrain.py")
    single = run_bounded(
        [sys.executable, script, *common, "--output_dir", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    ddp = run_bounded(
        [
            *launcher,
            script,
            *common,
            "--per_device_train_batch_size",
            "4",
            "--output_dir",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["num_processes"] == 2 and results["tokens_seen"] == 4 * 8 * 32
    assert_close(tmp_path / "one", tmp_path / "two", atol=1e-5)
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    for key in ("eval_loss", "eval_discriminator_accuracy", "eval_replaced_share"):
        assert results[key] == pytest.approx(one[key], abs=1e-4), key
