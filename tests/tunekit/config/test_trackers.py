"""--report_to takes what accelerate supports; each tracker gets the metrics and the resolved recipe,
offline; a tracker that is not installed is one line naming the extra."""

import importlib.util
import json
import os
import sqlite3
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.processes import run_bounded
from tunekit.cli import run_script
from tunekit.config import parse_recipe
from tunekit.config.trackers import TRACKERS, normalize_report_to, trackers_for
from tunekit.errors import TunekitError
from tunekit.training.tasks import run_pretraining


@pytest.mark.parametrize(
    "value, names",
    [
        ("none", ["none"]),
        ("all", ["all"]),
        ("wandb,mlflow", ["wandb", "mlflow"]),
        (["wandb", "MLflow"], ["wandb", "mlflow"]),
        ([], ["none"]),
    ],
)
def test_report_to_names(value, names):
    assert normalize_report_to(value) == names


def test_report_to_on_the_command_line_and_in_errors():
    assert parse_recipe(["--report_to", "tensorboard", "wandb"])[2].report_to == ["tensorboard", "wandb"]
    assert parse_recipe([])[2].report_to == ["tensorboard"]
    with pytest.raises(TunekitError, match="^report_to: unknown tracker 'wandbb'; choose from all, none, "):
        parse_recipe(["--report_to", "wandbb"])
    with pytest.raises(TunekitError, match="^report_to: none and wandb disagree"):
        parse_recipe(["--report_to", "none", "wandb"])


def test_a_tracker_that_is_not_installed_names_its_extra(monkeypatch):
    missing = next(
        (name for name in ("aim", "clearml", "swanlab") if importlib.util.find_spec(name) is None), None
    )
    if missing is None:
        pytest.skip("aim, clearml and swanlab are all installed: no tracker to miss")
    with pytest.raises(TunekitError) as error:
        trackers_for([missing])
    module, extra = TRACKERS[missing]
    assert (
        str(error.value)
        == f"report_to={missing}: the {module} package is not installed; pip install 'tunekit[{extra}]'"
    )
    assert trackers_for(["none"]) == []
    assert set(trackers_for(["all"])) == {
        name for name in TRACKERS if importlib.util.find_spec(TRACKERS[name][0])
    }


def test_a_missing_tracker_stops_the_run_in_one_line(pretrain_argv, tmp_path, capsys):
    missing = next(
        (name for name in ("aim", "clearml", "swanlab") if importlib.util.find_spec(name) is None), None
    )
    if missing is None:
        pytest.skip("aim, clearml and swanlab are all installed: no tracker to miss")
    assert run_script(run_pretraining, [*pretrain_argv, "--max_steps", "1", "--report_to", missing]) == 2
    assert capsys.readouterr().err.strip().endswith(f"pip install 'tunekit[{TRACKERS[missing][1]}]'")
    assert not (tmp_path / "pretrain" / "results.json").exists()


def run(pretrain_argv, tracker):
    argv = [*pretrain_argv, "--max_steps", "2", "--eval_steps", "2", "--report_to", tracker]
    assert run_script(run_pretraining, argv) == 0


def test_tensorboard_gets_metrics_and_the_recipe(pretrain_argv, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra (tunekit[study])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(pretrain_argv, "tensorboard")
    runs = tmp_path / "pretrain" / "runs" / "tunekit"
    events = EventAccumulator(str(runs)).Reload()
    assert {"loss", "learning_rate", "eval_loss"} <= set(events.Tags()["scalars"])
    (hparams,) = runs.glob("*/hparams.yml")
    assert yaml.safe_load(hparams.read_text())["learning_rate"] == 1e-3


def test_mlflow_file_store_gets_metrics_and_the_recipe(pretrain_argv, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is an optional extra (tunekit[mlflow])")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 asks for a database store otherwise
    run(pretrain_argv, "mlflow")
    mlflow.set_tracking_uri(store.as_uri())
    (found,) = mlflow.search_runs(experiment_names=["tunekit"], output_format="list")
    assert {"loss", "learning_rate", "eval_loss"} <= set(found.data.metrics)
    assert float(found.data.params["learning_rate"]) == 1e-3


def test_wandb_offline_gets_metrics_and_the_recipe(pretrain_argv, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is an optional extra (tunekit[wandb])")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run(pretrain_argv, "wandb")
    # wandb 0.2x+ keeps an offline run's config and history only in its protobuf log (read by its Go
    # core; no Python reader ships): the recipe's fields and the metrics' keys are strings in it.
    (log,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    records = log.read_bytes()
    assert b"\rlearning_rate\x82\x01\x050.001" in records  # config: learning_rate = 0.001 (JSON)
    for key in (b"mixed_precision", b"eval_loss", b"tokens_per_second"):
        assert key in records


def test_trackio_gets_metrics_and_the_recipe(pretrain_argv, tmp_path):
    pytest.importorskip("trackio", reason="trackio is an optional extra (tunekit[trackio])")
    # trackio reads TRACKIO_DIR when it is imported: a script of its own, in a process of its own
    store = tmp_path / "trackio"
    argv = [*pretrain_argv, "--max_steps", "2", "--eval_steps", "2", "--report_to", "trackio"]
    env = {**os.environ, "TRACKIO_DIR": str(store)}
    done = run_bounded([sys.executable, str(REPO / "scripts" / "pretrain.py"), *argv], env=env, timeout=600)
    assert done.returncode == 0
    with sqlite3.connect(store / "tunekit.db") as db:
        logged = [json.loads(row[0]) for row in db.execute("select metrics from metrics")]
        (config,) = [json.loads(row[0]) for row in db.execute("select config from configs")]
    assert {"loss", "eval_loss"} <= {key for line in logged for key in line}
    assert config["learning_rate"] == 1e-3
