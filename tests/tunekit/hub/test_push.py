"""Pushing to the Hub: the real create_repo + upload_folder against an in-process stand-in (no socket)."""

import hashlib
import json
import os
import sys
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import ModelCard, constants, set_client_factory
from huggingface_hub.utils._http import default_client_factory

from tests.fake_hub import ENDPOINT, FakeHub
from tests.processes import run_bounded
from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.hub.push import HubTarget, files_to_push, push_command, push_output_dir, redact_token
from tunekit.training.tasks import run_finetuning, run_pretraining

RUN_FILES = {
    "config.json",
    "metrics.jsonl",
    "model.safetensors",
    "recipe.yaml",
    "results.json",
    "tokenizer.json",
    "tokenizer_config.json",
}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The stand-in behind huggingface_hub's client factory, at the endpoint HF_ENDPOINT would set."""
    fake = FakeHub()
    monkeypatch.setattr(constants, "ENDPOINT", ENDPOINT)  # what HF_ENDPOINT sets, read at import
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # tests run with HF_HUB_OFFLINE=1
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    set_client_factory(fake.client_factory())
    yield fake
    set_client_factory(default_client_factory)


@pytest.fixture(scope="module")
def finished_run(corpus_files, tmp_path_factory) -> Path:
    """A tiny fine-tuning run with checkpoints and tensorboard events (never modified by a test)."""
    from tests.conftest import TINY_MODEL

    output_dir = tmp_path_factory.mktemp("run") / "classifier"
    argv = [
        *("--train_file", str(corpus_files["train"]), "--validation_file", str(corpus_files["validation"])),
        *("--test_file", str(corpus_files["test"]), *TINY_MODEL, "--max_seq_length", "48"),
        *("--max_steps", "4", "--save_steps", "2", "--disable_tqdm", "true", "--report_to", "tensorboard"),
        *("--output_dir", str(output_dir)),
    ]
    run_finetuning(*parse_recipe(argv))
    return output_dir


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    return {
        str(path.relative_to(directory)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_a_finetuning_run_pushes_itself_with_a_card_for_the_repo(hub, finetune_argv, tmp_path):
    output_dir = tmp_path / "finetune"
    argv = [*finetune_argv, "--max_steps", "2", "--push_to_hub", "true"]
    argv += ["--hub_model_id", "acme/tiny-classifier", "--hub_token", "hf_secret_cli", "--license", "mit"]
    run_finetuning(*parse_recipe(argv))

    assert hub.endpoints_called == ["/api/repos/create", "/api/validate-yaml", "preupload", "commit"]
    assert hub.created == [{"name": "tiny-classifier", "organization": "acme"}]
    assert all(request.url.host == "hub.test" for request in hub.requests)
    assert {r.headers["authorization"] for r in hub.requests} == {"Bearer hf_secret_cli"}
    (commit,) = hub.commits
    assert commit["repo_id"] == "acme/tiny-classifier"
    assert set(commit["files"]) == RUN_FILES | {"README.md"}
    assert sorted(hub.preuploaded) == sorted(commit["files"])
    sent_card = commit["files"]["README.md"].decode()
    assert hub.validated_cards == [sent_card]
    assert sent_card == (output_dir / "README.md").read_text()  # the local card names the repo too
    card = ModelCard(sent_card)
    assert card.data.model_name == "acme/tiny-classifier" and card.data.license == "mit"
    assert 'pipeline("text-classification", model="acme/tiny-classifier")' in card.text
    for name, content in commit["files"].items():
        assert content == (output_dir / name).read_bytes(), name
        assert b"hf_secret_cli" not in content, name  # the token is never saved nor sent as a file


def test_checkpoints_and_tensorboard_runs_go_only_when_asked(hub, finished_run):
    default = set(files_to_push(finished_run))
    everything = set(files_to_push(finished_run, include_checkpoints=True))
    assert default == RUN_FILES
    extra = everything - default
    assert {name.split("/")[0] for name in extra} == {"checkpoints", "runs"}
    assert any(name.startswith("checkpoints/step_2/") for name in extra)

    before = snapshot(finished_run)
    url = push_output_dir(finished_run, HubTarget("acme/with-checkpoints", include_checkpoints=True))
    assert url.startswith(f"{ENDPOINT}/acme/with-checkpoints/commit/")
    assert set(hub.commits[0]["files"]) == everything | {"README.md"}
    assert snapshot(finished_run) == before


def test_the_usual_token_lookup_applies_without_hub_token(hub, finished_run, monkeypatch, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("hf_from_file\n")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_file))
    push_output_dir(finished_run, HubTarget("acme/a"))
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    push_output_dir(finished_run, HubTarget("acme/b"))
    sent = [r.headers.get("authorization") for r in hub.requests if r.url.path == "/api/repos/create"]
    assert sent == ["Bearer hf_from_file", "Bearer hf_from_env"]


def test_a_bare_name_lands_in_the_token_owner_namespace_and_private_is_asked(hub, finished_run):
    push_output_dir(finished_run, HubTarget("tiny", private=True))
    assert hub.created == [{"name": "tiny", "organization": None, "visibility": "private"}]
    assert hub.commits[0]["repo_id"] == "alice/tiny"
    assert ModelCard(hub.commits[0]["files"]["README.md"].decode()).data.model_name == "alice/tiny"


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("401", "push_to_hub: no token or invalid token: set HF_TOKEN or pass --hub_token;"),
        ("403", "push_to_hub: no write access to namespace acme (hub_model_id acme/model);"),
        ("transport", f"push_to_hub: cannot reach {ENDPOINT} (ConnectError: connection refused);"),
        ("offline", "push_to_hub: offline mode is on (HF_HUB_OFFLINE=1);"),
        ("card", 'push_to_hub: the Hub refused the model card\'s metadata ("license" must be one of [...]);'),
    ],
)
def test_each_failure_is_one_line_and_the_run_is_untouched(hub, finished_run, monkeypatch, failure, expected):
    if failure in ("401", "403"):
        hub.create_status = int(failure)
    elif failure == "transport":
        hub.transport_error = httpx2.ConnectError("connection refused")
    elif failure == "offline":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    else:
        hub.card_errors = ['"license" must be one of [...]']
    before = snapshot(finished_run)
    with pytest.raises(TunekitError) as raised:
        push_output_dir(finished_run, HubTarget("acme/model", token="hf_x"))
    message = str(raised.value)
    assert message.startswith(expected) and "\n" not in message
    assert message.endswith(f"{finished_run} is unchanged; push it later with scripts/push_to_hub.py")
    assert hub.commits == []
    assert snapshot(finished_run) == before


def test_the_push_script_pushes_a_finished_run_and_reports_errors_in_one_line(hub, finished_run, capsys):
    assert push_command([str(finished_run), "--hub_model_id", "acme/from-script", "--hub_token", "t"]) == 0
    assert capsys.readouterr().out.startswith(f"{ENDPOINT}/acme/from-script/commit/")
    assert hub.commits[0]["repo_id"] == "acme/from-script"
    hub.create_status = 403
    assert push_command([str(finished_run), "--hub_model_id", "acme/x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert push_command([str(finished_run.parent), "--hub_model_id", "acme/x"]) == 2
    assert "is not a finished tunekit run" in capsys.readouterr().err


def test_recorded_commands_hide_the_token():
    argv = ["study.py", "--hub_token", "hf_a", "--hub_token=hf_b", "--seeds", "0"]
    assert redact_token(argv) == [
        "study.py",
        "--hub_token",
        "<hub_token>",
        "--hub_token=<hub_token>",
        "--seeds",
        "0",
    ]


def test_push_needs_a_saved_model():
    with pytest.raises(TunekitError, match="push_to_hub needs save_model true"):
        parse_recipe(["--push_to_hub", "true", "--save_model", "false"])
    assert json.loads(json.dumps(redact_token([]))) == []


def test_a_pretraining_run_pushes_a_fill_mask_card(hub, pretrain_argv, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")  # preflight refuses a push with no token at all
    argv = [*pretrain_argv, "--max_steps", "1", "--push_to_hub", "true", "--hub_model_id", "acme/tiny-mlm"]
    run_pretraining(*parse_recipe(argv))
    (commit,) = hub.commits
    assert commit["repo_id"] == "acme/tiny-mlm" and set(commit["files"]) == RUN_FILES | {"README.md"}
    card = ModelCard(commit["files"]["README.md"].decode())
    assert card.data.pipeline_tag == "fill-mask" and card.data.model_name == "acme/tiny-mlm"
    assert 'pipeline("fill-mask", model="acme/tiny-mlm")' in card.text


# HF_ENDPOINT is read when huggingface_hub is imported, so it is set for a fresh process here.
PUSH_IN_A_FRESH_PROCESS = """
import json, sys
from huggingface_hub import constants, set_client_factory
from tests.fake_hub import FakeHub
from tunekit.hub.push import push_command

constants.HF_HUB_OFFLINE = False
fake = FakeHub(endpoint=constants.ENDPOINT)
set_client_factory(fake.client_factory())
status = push_command([sys.argv[1], "--hub_model_id", "acme/env", "--hub_token", "t"])
print(json.dumps({"status": status, "hosts": sorted({r.url.host for r in fake.requests})}))
"""


def test_hf_endpoint_is_honoured(finished_run):
    from tests.conftest import REPO

    env = {**os.environ, "HF_ENDPOINT": "https://mirror.example", "PYTHONPATH": str(REPO)}
    done = run_bounded(
        [sys.executable, "-c", PUSH_IN_A_FRESH_PROCESS, str(finished_run)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 0, "hosts": ["mirror.example"]}


@pytest.mark.parametrize(
    ("flags", "private", "checkpoints"),
    [
        (["--hub_private_repo", "--hub_include_checkpoints"], True, True),
        (["--hub_private_repo", "true", "--hub_include_checkpoints", "yes"], True, True),
        (["--hub_private_repo", "false", "--hub_include_checkpoints=false"], False, False),
        ([], False, False),
    ],
    ids=["bare", "true", "false", "absent"],
)
def test_bool_flags_take_a_bare_or_a_valued_spelling_in_every_script(
    hub, finished_run, flags, private, checkpoints
):
    assert push_command([str(finished_run), "--hub_model_id", "acme/flags", "--hub_token", "t", *flags]) == 0
    assert (hub.created[0].get("visibility") == "private") is private
    assert any(path.startswith("checkpoints/") for path in hub.commits[0]["files"]) is checkpoints
    # The training scripts read the same spellings (HfArgumentParser).
    _, _, train_args = parse_recipe(
        ["--push_to_hub", *flags, "--hub_token", "t"] if flags else ["--push_to_hub", "false"]
    )
    assert (train_args.push_to_hub, train_args.hub_private_repo) == (bool(flags), private)
    assert train_args.hub_include_checkpoints is checkpoints


def test_a_malformed_repo_id_is_one_line_before_any_request(hub, finished_run, capsys):
    assert push_command([str(finished_run), "--hub_model_id", "acme/a/b", "--hub_token", "t"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: hub_model_id: 'acme/a/b' is not a Hub repository id") and err.count("\n") == 1
    )
    assert hub.requests == []


def test_a_push_that_cannot_happen_is_refused_before_the_run_writes_anything(
    pretrain_argv, tmp_path, monkeypatch
):
    from tunekit.hub.push import check_can_push

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    argv = [*pretrain_argv, "--max_steps", "1", "--push_to_hub", "true", "--hub_model_id", "acme/m"]
    with pytest.raises(TunekitError, match=r"^push_to_hub: offline mode is on"):
        run_pretraining(*parse_recipe([*argv, "--hub_token", "t"]))
    assert not (tmp_path / "pretrain").exists()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(TunekitError, match=r"^push_to_hub: no Hub token"):
        check_can_push(HubTarget("acme/m"))
    check_can_push(HubTarget("acme/m", token="hf_given"))  # --hub_token counts
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    check_can_push(HubTarget("acme/m"))  # so does huggingface_hub's own lookup
