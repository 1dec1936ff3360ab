"""Loading a classifier from a pretraining checkpoint: the expected head swap in one line, unexpected
keys still warned."""

import dataclasses
import logging

import pytest
from safetensors.torch import load_file, save_file

from tests.conftest import TINY_MODEL
from tunekit.config import parse_recipe
from tunekit.data.tokenizer_training import train_byte_level_bpe, train_wordpiece
from tunekit.models.build import build_classifier, build_pretraining_model

TEXTS = ["the film was good and the cast was fine", "a dull plot and a bad ending"] * 20


@pytest.mark.parametrize(
    ("model_type", "head"),
    [("modernbert", "MLM decoder"), ("lstm", "language-model decoder"), ("llama", "causal-LM head")],
)
def test_a_classifier_from_a_pretraining_checkpoint_logs_one_line(model_type, head, tmp_path, caplog):
    model_args, _, _ = parse_recipe([*TINY_MODEL, "--model_type", model_type])
    train = train_byte_level_bpe if model_args.is_decoder else train_wordpiece
    tokenizer = train(TEXTS, 300, 64)
    build_pretraining_model(model_args, tokenizer).save_pretrained(tmp_path)
    caplog.set_level(logging.INFO)
    build_classifier(dataclasses.replace(model_args, model_name_or_path=str(tmp_path)), tokenizer, ["n", "p"])
    assert f"new classification head; {head} weights dropped" in caplog.text
    assert model_type == "modernbert" or "MLM" not in caplog.text
    assert "LOAD REPORT" not in caplog.text and not [
        r for r in caplog.records if r.levelno >= logging.WARNING
    ]


def test_an_unexpected_encoder_key_still_warns(tmp_path, caplog):
    model_args, _, _ = parse_recipe(TINY_MODEL)
    tokenizer = train_wordpiece(TEXTS, 300, 64)
    build_pretraining_model(model_args, tokenizer).save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights["model.layers.7.attn.Wqkv.weight"] = weights["model.layers.0.attn.Wqkv.weight"].clone()
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    build_classifier(dataclasses.replace(model_args, model_name_or_path=str(tmp_path)), tokenizer, ["n", "p"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("model.layers.7.attn.Wqkv.weight" in message for message in warnings), caplog.text
    assert "new classification head" not in caplog.text
