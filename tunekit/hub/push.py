"""Push a finished run to the Hugging Face Hub: `HfApi.create_repo` then one `upload_folder` commit.

Not `PreTrainedModel.push_to_hub`, which sends only the model and writes a generic README over
ours. What goes up is the model (and, for the LSTM, its code), the tokenizer, the card rendered
for the repository id, `recipe.yaml`, `results.json` and `metrics.jsonl`; `checkpoints/` and the
tensorboard `runs/` only when asked. The files are staged as links in a temporary folder, so the
card names the Hub id while the local output dir is never written to, whatever happens.

The token is `--hub_token` or, unset, huggingface_hub's own lookup (HF_TOKEN, then the saved
token file); the endpoint is huggingface_hub's (HF_ENDPOINT). Every failure is one TunekitError line.
"""

import argparse
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token, is_offline_mode
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.hf_argparser import string_to_bool

from tunekit.errors import TunekitError
from tunekit.hub.card import build_model_card, read_run

logger = logging.getLogger(__name__)

try:  # huggingface_hub's HTTP client: httpx2 in its newest releases, httpx before
    from httpx2 import TransportError
except ImportError:
    from httpx import TransportError

OPTIONAL_DIRS = ("checkpoints", "runs")  # resumable checkpoints, tensorboard event files
CARD = "README.md"


@dataclass(frozen=True)
class HubTarget:
    """Where and how to push: the repository, its visibility, the token (None = the usual lookup)."""

    repo_id: str
    private: bool = False
    token: str | None = field(default=None, repr=False)
    include_checkpoints: bool = False

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else "of your user"


def target_from_args(args: object, output_dir: str | Path) -> HubTarget:
    """From TrainArguments (or the study's arguments): the repo id defaults to the output dir's name."""
    return HubTarget(
        repo_id=getattr(args, "hub_model_id", None) or Path(output_dir).resolve().name,
        private=getattr(args, "hub_private_repo", False),
        token=getattr(args, "hub_token", None),
        include_checkpoints=getattr(args, "hub_include_checkpoints", False),
    )


def check_repo_id(target: HubTarget, named: bool = True) -> None:
    """A repository id the Hub accepts ('name' or 'namespace/name'), before any request.
    `named`: it came from hub_model_id (else from the output dir's name)."""
    try:
        validate_repo_id(target.repo_id)
    except HFValidationError as error:
        reason = str(error).splitlines()[0].split(": '")[0]
        if named:
            raise TunekitError(
                f"hub_model_id: {target.repo_id!r} is not a Hub repository id ({reason})"
            ) from None
        raise TunekitError(
            f"hub_model_id unset: the output dir's name {target.repo_id!r} is not a Hub repository id "
            f"({reason}); set --hub_model_id namespace/name"
        ) from None


def check_can_push(target: HubTarget, named: bool = True) -> None:
    """What can be known before training that would make the push at its end fail: a malformed
    repository id, offline mode, no token at all (huggingface_hub's own lookup: HF_TOKEN, then the
    saved token file). Whether the token may write there only the Hub can say, at push time."""
    check_repo_id(target, named)
    if is_offline_mode():
        raise TunekitError(
            "push_to_hub: offline mode is on (HF_HUB_OFFLINE=1), so the run could not be pushed; unset it, "
            "or train with push_to_hub false and push later with scripts/push_to_hub.py"
        )
    if target.token is None and get_token() is None:
        raise TunekitError(
            "push_to_hub: no Hub token (HF_TOKEN is unset and no token was saved); set HF_TOKEN, "
            "run `hf auth login`, or pass --hub_token"
        )


def files_to_push(output_dir: Path, include_checkpoints: bool = False) -> list[str]:
    """Relative paths of what a push sends besides the card (which is rendered for the repo id)."""
    paths = []
    for path in sorted(output_dir.rglob("*")):
        relative = path.relative_to(output_dir)
        if not path.is_file() or relative.as_posix() == CARD or relative.name.startswith("."):
            continue
        if relative.parts[0] in OPTIONAL_DIRS and not include_checkpoints:
            continue
        paths.append(relative.as_posix())
    return paths


def _stage(output_dir: Path, staging: Path, files: list[str], extra_files: dict[str, Path]) -> None:
    sources = {name: output_dir / name for name in files} | extra_files
    for name, source in sources.items():
        link = staging / name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(source.resolve())
        except OSError:  # no symlinks (some Windows setups): copy instead
            shutil.copy2(source, link)


def _server_message(error: HfHubHTTPError) -> str:
    message = getattr(error, "server_message", None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else "no message"


@contextmanager
def hub_errors(target: HubTarget, output_dir: Path) -> Iterator[None]:
    """Each way a push fails, as one line that says what to do; the run stays where it is."""
    kept = f"{output_dir} is unchanged; push it later with scripts/push_to_hub.py"
    try:
        yield
    except OfflineModeIsEnabled:
        raise TunekitError(f"push_to_hub: offline mode is on (HF_HUB_OFFLINE=1); {kept}") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            reason = "no token or invalid token: set HF_TOKEN or pass --hub_token"
        elif status == 403:
            reason = f"no write access to namespace {target.namespace} (hub_model_id {target.repo_id})"
        else:
            reason = f"the Hub answered {status} for {target.repo_id}: {_server_message(error)}"
        raise TunekitError(f"push_to_hub: {reason}; {kept}") from None
    except TransportError as error:
        raise TunekitError(
            f"push_to_hub: cannot reach {constants.ENDPOINT} ({type(error).__name__}: {error}); "
            f"check the network and HF_ENDPOINT; {kept}"
        ) from None
    except ValueError as error:
        if "Invalid metadata in README.md" not in str(error):
            raise
        details = "; ".join(line.lstrip("- ") for line in str(error).splitlines()[1:] if line.strip())
        raise TunekitError(
            f"push_to_hub: the Hub refused the model card's metadata ({details}); {kept}"
        ) from None


def push_output_dir(
    output_dir: str | Path,
    target: HubTarget,
    extra_files: dict[str, Path] | None = None,
    card_note: str | None = None,
) -> str:
    """Create (or reuse) the repository and upload the run in one commit; returns the commit URL.

    `extra_files` maps names in the repository to local files (a study adds its report);
    `card_note` is a markdown section added to the card.
    """
    output_dir = Path(output_dir)
    read_run(output_dir)  # refuses a dir that is not a finished run, before any request
    check_repo_id(target)
    if not any(output_dir.glob("*.safetensors")) and not (output_dir / "adapter_config.json").is_file():
        raise TunekitError(f"{output_dir} holds no saved model (was it run with save_model false?)")
    api = HfApi()  # endpoint unset: huggingface_hub's, i.e. HF_ENDPOINT when that is set
    with hub_errors(target, output_dir):
        repo_url = api.create_repo(
            target.repo_id, token=target.token, private=True if target.private else None, exist_ok=True
        )
        repo_id = repo_url.repo_id
        with tempfile.TemporaryDirectory(prefix="tunekit-push-") as staging:
            staging_dir = Path(staging)
            files = files_to_push(output_dir, target.include_checkpoints)
            _stage(output_dir, staging_dir, files, extra_files or {})
            build_model_card(output_dir, repo_id=repo_id, note=card_note).save(staging_dir / CARD)
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging_dir,
                token=target.token,
                commit_message=f"tunekit: upload {output_dir.name}",
            )
    logger.info("pushed %s to %s (%s)", output_dir, repo_id, commit.commit_url)
    return commit.commit_url


def redact_token(argv: list[str]) -> list[str]:
    """A command line fit to record: the value of --hub_token replaced."""
    redacted, hide_next = [], False
    for item in argv:
        if hide_next:
            redacted.append("<hub_token>")
        elif item.startswith("--hub_token="):
            redacted.append("--hub_token=<hub_token>")
        else:
            redacted.append(item)
        hide_next = item in ("--hub_token", "--hub-token")
    return redacted


def push_command(argv: list[str] | None = None) -> int:
    """`scripts/push_to_hub.py OUTPUT_DIR --hub_model_id ID [...]`: push a finished run; 2 on failure."""
    parser = argparse.ArgumentParser(prog="push_to_hub.py", description="Push a finished tunekit run.")
    parser.add_argument("output_dir", help="The run's output dir (holds results.json and the model).")
    parser.add_argument(
        "--hub_model_id", help="'namespace/name' (unset = the run's hub_model_id or dir name)."
    )
    # Bare (`--hub_private_repo`) or with a value (`--hub_private_repo true`), as the training scripts'.
    flag = {"type": string_to_bool, "nargs": "?", "const": True, "default": False}
    parser.add_argument("--hub_private_repo", **flag, help="Create the repository as private.")
    parser.add_argument("--hub_token", help="Token; unset = HF_TOKEN, then the saved token file.")
    parser.add_argument("--hub_include_checkpoints", **flag, help="Also push checkpoints/ and runs/.")
    args = parser.parse_args(argv)
    try:
        recipe, _ = read_run(Path(args.output_dir))
        args.hub_model_id = args.hub_model_id or recipe.get("hub_model_id")
        args.hub_private_repo = args.hub_private_repo or bool(recipe.get("hub_private_repo"))
        url = push_output_dir(args.output_dir, target_from_args(args, args.output_dir))
    except TunekitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(url)
    return 0
