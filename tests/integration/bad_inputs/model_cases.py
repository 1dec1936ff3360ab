"""Bad models and tokenizers; the device, the output directory and resuming."""

from pathlib import Path

from .workspace import Case, F, P, big_tokenizer, empty_dir, fake_run_to_resume, refuse_write, tiny_model_copy


def hub_mode(offline: bool, token: bool = False):
    """Offline or online, with or without a token anywhere huggingface_hub looks for one."""

    def patch(mp) -> None:
        from huggingface_hub import constants

        mp.setattr(constants, "HF_HUB_OFFLINE", offline)
        mp.setattr(constants, "HF_TOKEN_PATH", "/nonexistent/tunekit-test/token")
        mp.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        if token:
            mp.setenv("HF_TOKEN", "hf_test_token")
        else:
            mp.delenv("HF_TOKEN", raising=False)

    return patch


MODEL_AND_RUN_CASES = [
    Case(
        "model-dir-missing",
        F,
        lambda w: w.finetune("--model_name_or_path", "/path/that/does/not/exist"),
        "model_name_or_path: no such directory /path/that/does/not/exist",
    ),
    Case(
        "default-recipe-without-pretraining",
        F,
        lambda w: ["--train_file", w.labeled],
        "the default recipe fine-tunes outputs/tiny/pretrain: run scripts/pretrain.py first, "
        "or pass --model_name_or_path / --model_type",
        default_recipe=True,
    ),
    Case(
        "model-dir-is-empty-directory",
        F,
        lambda w: w.finetune("--model_name_or_path", tiny_model_copy(w, empty_dir)),
        "is an empty directory",
    ),
    Case(
        "model-path-is-a-file",
        F,
        lambda w: w.finetune("--model_name_or_path", w.labeled),
        "train.csv is a file; expected a directory written by save_pretrained",
    ),
    Case(
        "model-dir-without-config",
        F,
        lambda w: w.finetune(
            "--model_name_or_path", tiny_model_copy(w, lambda d: (d / "config.json").unlink())
        ),
        "has no config.json",
    ),
    Case(
        "model-config-corrupt",
        F,
        lambda w: w.finetune(
            "--model_name_or_path", tiny_model_copy(w, lambda d: (d / "config.json").write_text("{oops"))
        ),
        "not a valid JSON file",
    ),
    Case(
        "model-weights-corrupt",
        F,
        lambda w: w.finetune(
            "--model_name_or_path",
            tiny_model_copy(w, lambda d: (d / "model.safetensors").write_bytes(b"not weights" * 8)),
        ),
        "model_name_or_path: cannot load",
    ),
    Case(
        "model-of-another-type",
        F,
        lambda w: w.finetune("--model_name_or_path", w.model, "--model_type", "bert"),
        "holds a modernbert model but model_type is bert",
    ),
    Case(
        "model-hub-name-offline",
        F,
        lambda w: w.finetune("--model_name_or_path", "someone/tiny-model"),
        "HF_HUB_OFFLINE=1 rules out fetching it",
    ),
    Case(
        "tokenizer-dir-missing",
        F,
        lambda w: w.finetune("--tokenizer_name_or_path", str(w.root / "no_tokenizer")),
        "tokenizer_name_or_path: no such directory",
    ),
    Case(
        "block-longer-than-positions",
        F,
        lambda w: w.finetune("--max_seq_length", "128"),
        "max_seq_length=128 is longer than max_position_embeddings allows (64)",
    ),
    Case(
        "block-longer-than-pretrained-positions",
        P,
        lambda w: w.pretrain("--model_name_or_path", w.model, "--max_seq_length", "96"),
        "max_seq_length=96 is longer than the model at",
    ),
    Case(
        "tokenizer-larger-than-embeddings",
        F,
        lambda w: w.finetune("--model_name_or_path", w.model, "--tokenizer_name_or_path", big_tokenizer(w)),
        "the model embeds only",
    ),
    # --- device, output directory, resume
    Case(
        "fp16-on-cpu",
        F,
        lambda w: w.finetune("--mixed_precision", "fp16"),
        "mixed_precision=fp16 needs a GPU",
    ),
    Case(
        "output-dir-not-empty",
        F,
        lambda w: w.finetune("--output_dir", str(w.existing)),
        "is not empty; pass --overwrite_output_dir true",
    ),
    Case(
        "output-dir-is-a-file",
        F,
        lambda w: w.finetune("--output_dir", w.labeled),
        "train.csv is a file; expected a directory",
    ),
    Case(
        "output-dir-under-a-file",
        P,
        lambda w: w.pretrain("--output_dir", w.labeled + "/run"),
        "cannot create it",
    ),
    Case(
        "output-dir-read-only",
        F,
        lambda w: w.finetune(),
        "cannot write to",
        # Root ignores permission bits, so the read-only disk is simulated where the probe writes.
        patch=lambda mp: mp.setattr("tunekit.training.preflight.tempfile.TemporaryFile", refuse_write),
    ),
    Case(
        "resume-without-checkpoint",
        F,
        lambda w: w.finetune("--resume_from_checkpoint", "latest"),
        "resume_from_checkpoint=latest: no checkpoint under",
    ),
    Case(
        "resume-from-non-checkpoint",
        F,
        lambda w: w.finetune("--resume_from_checkpoint", str(w.existing)),
        "is not a tunekit checkpoint",
    ),
    Case(
        "resume-with-changed-recipe",
        F,
        lambda w: [
            w.recipe(
                train_file=[w.labeled],
                learning_rate=2e-3,
                output_dir=fake_run_to_resume(w, learning_rate=1e-3),
            ),
            "--resume_from_checkpoint",
            "latest",
        ],
        "the recipe differs from the run being resumed in learning_rate (0.001 -> 0.002)",
    ),
    Case(
        "resume-with-changed-shape-into-new-dir",
        F,
        lambda w: [
            w.recipe(train_file=[w.labeled], output_dir=str(w.root / "continued")),
            "--resume_from_checkpoint",
            str(Path(fake_run_to_resume(w, hidden_size=64)) / "checkpoints" / "step_1"),
        ],
        "the recipe differs from the run being resumed in hidden_size (64 -> 32)",
    ),
    # --- a push that would fail after the whole run is refused before it
    Case(
        "push-while-offline",
        F,
        lambda w: w.finetune("--push_to_hub", "true", "--hub_model_id", "acme/tiny"),
        "push_to_hub: offline mode is on (HF_HUB_OFFLINE=1), so the run could not be pushed",
        patch=hub_mode(offline=True, token=True),
    ),
    Case(
        "push-without-token",
        P,
        lambda w: w.pretrain("--push_to_hub", "--hub_model_id", "acme/tiny"),
        "push_to_hub: no Hub token (HF_TOKEN is unset and no token was saved)",
        patch=hub_mode(offline=False),
    ),
    Case(
        "push-to-malformed-repo-id",
        F,
        lambda w: w.finetune("--push_to_hub", "true", "--hub_model_id", "acme/tiny/model"),
        "hub_model_id: 'acme/tiny/model' is not a Hub repository id (Repo id must be in the form",
        patch=hub_mode(offline=False, token=True),
    ),
    Case(
        "push-output-dir-name-not-repo-id",
        F,
        lambda w: w.finetune("--push_to_hub", "true", "--output_dir", str(w.root / "my run")),
        "hub_model_id unset: the output dir's name 'my run' is not a Hub repository id",
        patch=hub_mode(offline=False, token=True),
    ),
]
