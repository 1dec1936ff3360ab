"""The Trainer's fields that tunekit now has: eval/save strategies per epoch, gradient checkpointing,
attn_implementation and trust_remote_code do what their names say in a real run or load."""

import json

import pytest
import torch
from safetensors.torch import load_file

import tunekit.training.accelerator
from tunekit.cli import run_script
from tunekit.config import ModelArguments
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.build import build_classifier
from tunekit.training.preflight import check_model_source
from tunekit.training.tasks import run_finetuning, run_pretraining

TEXTS = ["a truly gravolen film", "the plot was not tesmirak", "i watched it with my sister"] * 20


def test_epoch_strategies_evaluate_and_checkpoint_at_each_epoch_end(finetune_argv, tmp_path):
    # 64 training examples in batches of 8: 8 optimizer steps per epoch, 16 in 2 epochs.
    argv = [*finetune_argv, "--num_train_epochs", "2", "--eval_strategy", "epoch", "--save_strategy", "epoch"]
    assert run_script(run_finetuning, argv) == 0
    out = tmp_path / "finetune"
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "eval_loss" in line] == [8, 16]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_8"]
    assert json.loads((out / "checkpoints" / "step_8" / "progress.json").read_text())["epoch"] == 1


def test_gradient_checkpointing_trains_the_same_weights(pretrain_argv, tmp_path, monkeypatch):
    enabled = []
    original = tunekit.training.accelerator.enable_gradient_checkpointing

    def spy(model):
        original(model)
        enabled.append(model.is_activation_checkpointing)

    monkeypatch.setattr(tunekit.training.accelerator, "enable_gradient_checkpointing", spy)
    weights = {}
    for name, flags in (("plain", []), ("checkpointed", ["--gradient_checkpointing"])):
        # dropout on: the recomputed forward must draw the masks the first one drew
        argv = [*pretrain_argv, "--max_steps", "3", "--dropout", "0.1", "--output_dir", str(tmp_path / name)]
        assert run_script(run_pretraining, [*argv, *flags]) == 0
        weights[name] = load_file(tmp_path / name / "model.safetensors")
    assert enabled == [True]
    for key, value in weights["plain"].items():
        torch.testing.assert_close(weights["checkpointed"][key], value, rtol=0, atol=0)


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(TEXTS, vocab_size=120, model_max_length=64)


def tiny(**overrides) -> ModelArguments:
    values = dict(
        model_type="modernbert",
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        dropout=0.0,
    )
    return ModelArguments(**{**values, **overrides})


def test_attn_implementation_reaches_the_model(tokenizer, tmp_path):
    assert build_classifier(tiny(), tokenizer, ["a", "b"]).config._attn_implementation == "sdpa"
    eager = build_classifier(tiny(attn_implementation="eager"), tokenizer, ["a", "b"])
    assert eager.config._attn_implementation == "eager"
    eager.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    loaded = build_classifier(
        tiny(attn_implementation="eager", model_name_or_path=str(tmp_path / "saved")), tokenizer, ["a", "b"]
    )
    assert loaded.config._attn_implementation == "eager"
    with pytest.raises(TunekitError, match="^attn_implementation=no_such_kernel: "):
        build_classifier(tiny(attn_implementation="no_such_kernel"), tokenizer, ["a", "b"])


CUSTOM_CONFIG = """
from transformers import ModernBertConfig


class TaggedConfig(ModernBertConfig):
    tagged = True
"""


def test_trust_remote_code_loads_the_repository_code(tokenizer, tmp_path):
    model = build_classifier(tiny(), tokenizer, ["a", "b"])
    model.save_pretrained(tmp_path)
    (tmp_path / "configuration_tagged.py").write_text(CUSTOM_CONFIG)
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_tagged.TaggedConfig"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert not getattr(check_model_source(str(tmp_path)), "tagged", False)
    assert check_model_source(str(tmp_path), trust_remote_code=True).tagged is True
