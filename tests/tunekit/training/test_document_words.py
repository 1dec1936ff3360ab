"""Document bag of words (tunekit.training.document_words, objective dbow): learning, saving as a
stock masked LM, FLOPs, exact accumulation and resume, on tiny corpora (DDP:
tests/integration/test_dbow_distributed.py)."""

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, pipeline

from tests.tunekit.training.exactness import (
    assert_weights_close,
    check_accumulation_matches_one_big_batch,
    check_resume_mid_epoch_is_bitwise,
)
from tests.tunekit.training.test_loop import records
from tests.tunekit.training.test_rtd import topic_corpus
from tunekit.config import ModelArguments, parse_recipe
from tunekit.errors import TunekitError
from tunekit.training.document_words import build_document_words
from tunekit.training.tasks import run_finetuning, run_pretraining
from tunekit.training.throughput import flops_per_token

DBOW = ["--objective", "dbow"]


def weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(output_dir / "model.safetensors"))


def assert_close(a: Path, b: Path, atol: float) -> None:
    assert_weights_close(a, b, weights, atol)


def test_objective_needs_modernbert():
    with pytest.raises(TunekitError, match="objective=dbow needs model_type modernbert"):
        ModelArguments(model_type="bert", objective="dbow")
    assert ModelArguments(model_type="modernbert", objective="dbow").is_document_words


def test_the_window_learns_its_documents_topic_and_saves_as_a_stock_masked_lm(
    pretrain_argv, finetune_argv, tmp_path
):
    """200 documents, each of one of 10 topics' 6 words: the rest of a document holds its topic's
    words only, so the pooled window can predict them once it has learned which topic it reads."""
    out = tmp_path / "pretrain"
    corpus = ["--train_file", str(topic_corpus(tmp_path / "topics.jsonl"))]
    schedule = ["--learning_rate", "5e-3", "--max_steps", "60", "--eval_steps", "20", "--logging_steps", "20"]
    results = run_pretraining(*parse_recipe([*pretrain_argv, *corpus, *DBOW, *schedule]))
    losses = [r["eval_loss"] for r in records(out) if "eval_loss" in r]
    assert len(losses) == 3
    # Topic-blind, the best prediction is the corpus's word distribution: log 60 nats (60 words,
    # evenly used); knowing the topic, log 6 = 1.8. The start is that of an untrained head.
    assert losses[-1] < losses[0] - 0.5 and losses[-1] < math.log(60) - 1.0
    assert results["task"] == "document-words" and results["objective"] == "dbow"
    assert results["train_flops"] == results["flops_per_token"] * results["tokens_seen"]

    masked_lm = AutoModelForMaskedLM.from_pretrained(out)
    saved = weights(out)
    loaded = masked_lm.state_dict()
    for name, value in saved.items():  # the tied decoder is saved once, as the embeddings
        assert torch.equal(loaded[name], value), name
    assert masked_lm.decoder.weight.data_ptr() == masked_lm.get_input_embeddings().weight.data_ptr()
    classifier = AutoModelForSequenceClassification.from_pretrained(
        out, num_labels=2, classifier_pooling="mean"
    )
    for name in ("head.dense.weight", "head.norm.weight"):
        assert torch.equal(classifier.state_dict()[name], saved[name]), name
    assert pipeline("text-classification", model=str(out))("t1w2 t1w3 t1w0")[0]["label"]
    card = (out / "README.md").read_text()
    assert "objective: dbow" in card and "pipeline_tag: feature-extraction" in card
    assert results["target_words_with_weight"] > 0

    tuned = run_finetuning(
        *parse_recipe([*finetune_argv, "--model_name_or_path", str(out), "--max_steps", "2"])
    )
    assert tuned["init"] == str(out) and 0.0 <= tuned["test_accuracy"] <= 1.0


def test_flops_count_the_head_once_per_window(pretrain_argv, tmp_path):
    model_args, _, _ = parse_recipe([*pretrain_argv, *DBOW, "--vocab_size", "300"])
    from tunekit.data.tokenizer_training import train_wordpiece

    tokenizer = train_wordpiece([f"w{i} w{i + 1}" for i in range(400)], vocab_size=300, model_max_length=64)
    model = build_document_words(model_args, tokenizer)
    per_token = flops_per_token(model, 32.0)
    assert per_token == flops_per_token(model.masked_lm, 32.0, 1 / 32)
    assert (
        flops_per_token(model.masked_lm, 32.0, 0.0) < per_token < flops_per_token(model.masked_lm, 32.0, 0.15)
    )


def test_gradient_accumulation_matches_one_big_batch(pretrain_argv, tmp_path):
    check_accumulation_matches_one_big_batch([*pretrain_argv, *DBOW], tmp_path, weights)


def test_resume_mid_epoch_is_bitwise(pretrain_argv, tmp_path):
    check_resume_mid_epoch_is_bitwise([*pretrain_argv, *DBOW], tmp_path, weights)
