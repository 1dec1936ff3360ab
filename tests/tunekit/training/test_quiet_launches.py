"""Multi-process and CPU launches stay quiet: info lines and progress bars from the main process only,
and --disable_tqdm hides datasets' bars too."""

import subprocess
import sys

import datasets

from tunekit.cli import run_script
from tunekit.training.tasks import run_pretraining

PROBE = """
import logging, datasets
from tunekit.cli import setup_logging
setup_logging()
logging.getLogger("tunekit.probe").info("an info line")
logging.getLogger("tunekit.probe").warning("a warning")
print("bars", datasets.is_progress_bar_enabled())
"""


def probe(rank: str) -> subprocess.CompletedProcess:
    env = {"RANK": rank, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)


def test_only_the_main_process_logs_info_and_shows_bars():
    main, other = probe("0"), probe("1")
    assert "an info line" in main.stderr and "a warning" in main.stderr and "bars True" in main.stdout
    assert "an info line" not in other.stderr and "a warning" in other.stderr and "bars False" in other.stdout


def test_disable_tqdm_hides_the_datasets_bars(pretrain_argv, capfd):
    assert datasets.is_progress_bar_enabled()
    argv = [*pretrain_argv, "--max_steps", "1"]  # pretrain_argv passes --disable_tqdm true
    assert run_script(run_pretraining, argv) == 0
    err = capfd.readouterr().err
    assert (
        "tokenizing and packing" not in err and "Generating train split" not in err and "training:" not in err
    )
    assert datasets.is_progress_bar_enabled()  # restored for whatever runs next in this process
