"""Launching a training script under torchrun for the multi-process tests, and the comparison they
share: the same training in one process and in two (torchrun, gloo, CPU), each bounded in time."""

import os
import socket
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.processes import run_bounded

TIMEOUT = 300  # seconds a tiny run may take on 2 shared cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(processes: int = 2) -> list[str]:
    """The launcher's command line, before the script: `processes` ranks on this machine."""
    return [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)),
        *("--master_addr", "127.0.0.1", "--master_port", str(free_port())),
    ]


def train_in_one_and_two_processes(script: str, argv: list[str], tmp_path: Path, batch: int = 8) -> None:
    """`scripts/<script>` with `argv`: once in one process at batch `batch` into tmp_path/one, once in
    two at `batch // 2` each (the same global batch) into tmp_path/two; each must exit 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    path = str(REPO / "scripts" / script)
    for launcher, name, per_process in ([sys.executable], "one", batch), (torchrun(), "two", batch // 2):
        done = run_bounded(
            [*launcher, path, *argv, "--per_device_train_batch_size", str(per_process)]
            + ["--output_dir", str(tmp_path / name)],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, (name, done.stderr[-3000:])
