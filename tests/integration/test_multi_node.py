"""The multi-node launch (recipes/accelerate/multi_node.yaml), as 2 "nodes" x 1 process on localhost:
CPU, gloo, --machine_rank 0 and 1 meeting at one static rendezvous. It must end with the weights of the
2-process single-node run, bit for bit, and only the main node's main process logs info lines."""

import os
import socket
import subprocess
import sys
from contextlib import AbstractContextManager
from typing import IO

import pytest
from safetensors.torch import load_file

from tests.conftest import REPO
from tests.processes import bounded_popen, run_bounded

TIMEOUT = 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(config: str, *flags: str) -> list[str]:
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    # fp32: the configs say bf16 for GPUs; --use_cpu true (in the run's flags) makes it gloo on the CPU
    return [
        *accelerate,
        "--config_file",
        str(REPO / "recipes" / "accelerate" / config),
        "--mixed_precision",
        "no",
        *flags,
    ]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_nodes_of_one_process_equal_one_node_of_two(pretrain_argv, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [str(REPO / "scripts" / "pretrain.py"), *pretrain_argv, "--max_steps", "3", "--use_cpu", "true"]
    single = run_bounded(
        [*launch("multi_gpu.yaml", "--num_processes", "2"), *run, "--output_dir", str(tmp_path / "one_node")],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    port = str(free_port())

    def node(rank: int, log: IO[str]) -> AbstractContextManager[subprocess.Popen]:
        flags = ["--num_machines", "2", "--num_processes", "2", "--machine_rank", str(rank)]
        flags += ["--main_process_ip", "127.0.0.1", "--main_process_port", port]
        command = [*launch("multi_node.yaml", *flags), *run, "--output_dir", str(tmp_path / "two_nodes")]
        # to files, not pipes: a node that fills a pipe nobody reads yet would stall the other
        return bounded_popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    logs = [tmp_path / "node0.log", tmp_path / "node1.log"]
    with logs[0].open("w") as log0, logs[1].open("w") as log1, node(0, log0) as node0, node(1, log1) as node1:
        for process in (node0, node1):  # past the timeout, leaving the block kills both process groups
            process.wait(timeout=TIMEOUT)
    nodes = [(process.returncode, log.read_text()) for process, log in zip((node0, node1), logs, strict=True)]
    for returncode, err in nodes:
        assert returncode == 0, err[-3000:]
    one, two = (
        load_file(tmp_path / "one_node" / "model.safetensors"),
        load_file(tmp_path / "two_nodes" / "model.safetensors"),
    )
    assert one.keys() == two.keys()
    assert all(one[key].equal(two[key]) for key in one)
    # Info lines (the end-of-run block among them) come from the main node's main process only.
    assert "run finished" in nodes[0][1] and " INFO " not in nodes[1][1]
