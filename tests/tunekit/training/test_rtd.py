"""Replaced-token detection (tunekit.training.rtd): labels, sampling, learning, saving, exact
accumulation and resume, on the tiny corpus (DDP: tests/integration/test_rtd_distributed.py)."""

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertTokenizerFast,
    ElectraForMaskedLM,
    pipeline,
)

from tests.tunekit.training.exactness import (
    assert_weights_close,
    check_accumulation_matches_one_big_batch,
    check_resume_mid_epoch_is_bitwise,
)
from tests.tunekit.training.test_loop import records
from tunekit.config import ModelArguments, parse_recipe
from tunekit.data.masking import REPLACEMENT_DRAWS, ReplacedTokenCollator
from tunekit.data.tokenization import BLOCK_ID
from tunekit.errors import TunekitError
from tunekit.models.mlm_head import masked_positions
from tunekit.training.rtd import (
    GENERATOR_DIR,
    build_replaced_token_detection,
    replace_tokens,
    sample_replacements,
)
from tunekit.training.tasks import run_finetuning, run_pretraining
from tunekit.training.throughput import flops_per_token

RTD = ["--objective", "rtd"]


def tensors(output_dir: Path) -> dict[str, torch.Tensor]:
    found = load_file(str(output_dir / "model.safetensors"))
    found |= {
        f"generator.{k}": v
        for k, v in load_file(str(output_dir / GENERATOR_DIR / "model.safetensors")).items()
    }
    return found


def assert_close(a: Path, b: Path, atol: float) -> None:
    assert_weights_close(a, b, tensors, atol)


def test_sampled_back_originals_are_labelled_original():
    input_ids = torch.tensor([[5, 4, 7, 4], [9, 4, 4, 6]])  # 4 is [MASK]
    labels = torch.tensor([[-100, 11, -100, 12], [-100, 13, 14, -100]])
    positions = masked_positions(labels)
    originals = labels.view(-1)[positions]
    sampled = torch.tensor([11, 30, 31, 14])  # the first and the last are the originals sampled back
    corrupted, replaced = replace_tokens(input_ids, positions, originals, sampled)
    assert corrupted.tolist() == [[5, 11, 7, 30], [9, 31, 14, 6]]
    assert replaced.tolist() == [[False, False, False, True], [False, True, False, False]]


def test_sampling_follows_the_softmax_and_never_picks_silenced_rows():
    probabilities = torch.tensor([0.25, 0.5, 0.25, 0.0])
    logits = torch.log(probabilities.clamp(min=1e-30)).expand(5, 4).clone()
    logits[:, 3] = -1e4  # a padded vocabulary row
    draws = torch.tensor([0.1, 0.3, 0.74, 0.8, 0.999999])
    assert sample_replacements(logits, draws).tolist() == [0, 1, 1, 2, 2]
    many = sample_replacements(
        torch.log(probabilities.clamp(min=1e-30)).expand(20_000, 4), torch.rand(20_000)
    )
    shares = torch.bincount(many, minlength=4).float() / 20_000
    torch.testing.assert_close(shares, probabilities, atol=0.02, rtol=0)


@pytest.fixture
def word_tokenizer(tmp_path: Path) -> BertTokenizerFast:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(60)]]))
    return BertTokenizerFast(vocab_file=str(vocab))


def test_a_blocks_draws_do_not_depend_on_its_batch(word_tokenizer):
    ids = word_tokenizer(" ".join(f"w{i}" for i in range(14)))["input_ids"]
    blocks = [{"input_ids": ids, BLOCK_ID: i} for i in range(4)]
    collate = ReplacedTokenCollator(tokenizer=word_tokenizer, mlm_probability=0.5, seed=3)
    together = collate(blocks)
    alone = collate(blocks[2:3])
    rows = together["masked_positions"] // 16
    assert torch.equal(together[REPLACEMENT_DRAWS][rows == 2], alone[REPLACEMENT_DRAWS])
    assert together[REPLACEMENT_DRAWS].shape == together["masked_positions"].shape


def test_generator_is_a_quarter_and_shares_the_embeddings(word_tokenizer):
    model_args = ModelArguments(
        model_type="bert", hidden_size=64, num_attention_heads=4, intermediate_size=128, objective="rtd"
    )
    model = build_replaced_token_detection(model_args, word_tokenizer)
    generator, discriminator = model.generator, model.discriminator
    assert isinstance(generator, ElectraForMaskedLM)
    assert (generator.config.hidden_size, generator.config.num_attention_heads) == (16, 1)
    assert generator.config.intermediate_size == 32
    shared = discriminator.get_input_embeddings().weight
    assert generator.get_input_embeddings().weight is shared
    assert generator.get_output_embeddings().weight is shared
    assert generator.base_model.embeddings.position_embeddings is discriminator.embeddings.position_embeddings
    # FLOPs count both models: the generator's head on the masked share, the discriminator everywhere.
    expected = flops_per_token(generator, 32, 0.15) + flops_per_token(discriminator, 32)
    expected += 6 * sum(p.numel() for p in model.detection_head.parameters())
    assert flops_per_token(model, 32, 0.15) == pytest.approx(expected)
    assert flops_per_token(model, 32, 0.15) > flops_per_token(discriminator, 32)


def test_objective_fields_are_checked():
    with pytest.raises(TunekitError, match="objective=rtd needs model_type"):
        ModelArguments(model_type="gpt2", objective="rtd")
    with pytest.raises(TunekitError, match="generator_size_ratio"):
        ModelArguments(objective="rtd", generator_size_ratio=0.0)
    with pytest.raises(TunekitError, match="rtd_discriminator_weight"):
        ModelArguments(objective="rtd", rtd_discriminator_weight=-1.0)
    with pytest.raises(TunekitError, match="rtd_sampling_temperature"):
        ModelArguments(objective="rtd", rtd_sampling_temperature=0.0)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_replacements_are_sampled_from_the_generator_at_the_temperature(
    word_tokenizer, monkeypatch, temperature
):
    import tunekit.training.rtd as rtd

    model_args = ModelArguments(
        model_type="bert",
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        objective="rtd",
        rtd_sampling_temperature=temperature,
    )
    model = build_replaced_token_detection(model_args, word_tokenizer).eval()
    ids = word_tokenizer(" ".join(f"w{i}" for i in range(14)))["input_ids"]
    batch = ReplacedTokenCollator(tokenizer=word_tokenizer, mlm_probability=0.5, seed=3)(
        [{"input_ids": ids, BLOCK_ID: i} for i in range(2)]
    )
    sampled_from = []
    original = rtd.sample_replacements
    monkeypatch.setattr(
        rtd,
        "sample_replacements",
        lambda logits, draws: sampled_from.append(logits) or original(logits, draws),
    )
    with torch.no_grad():
        model(**batch)
        generator_logits = model.generator(
            input_ids=batch["input_ids"], masked_positions=batch["masked_positions"]
        ).logits.reshape(-1, model.generator.config.vocab_size)
    torch.testing.assert_close(sampled_from[0], generator_logits / temperature)


def topic_corpus(path: Path) -> Path:
    """200 documents of 100 words, each drawn from one of 10 topics of 6 one-token words."""
    rng = random.Random(0)
    rows = []
    for _ in range(200):
        topic = rng.randrange(10)
        rows.append({"text": " ".join(f"t{topic}w{rng.randrange(6)}" for _ in range(100))})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_discriminator_beats_the_base_rate_and_saves_as_a_stock_encoder(
    pretrain_argv, finetune_argv, tmp_path
):
    """A tiny run on a corpus whose replaced tokens can be told at once (tokens the text never shows
    on their own, which a young generator still proposes): the discriminator's accuracy must rise
    above always answering "original" (1 - the replaced share) at an evaluation."""
    out = tmp_path / "pretrain"
    corpus = ["--train_file", str(topic_corpus(tmp_path / "topics.jsonl"))]
    results = run_pretraining(
        *parse_recipe(
            [
                *pretrain_argv,
                *corpus,
                *RTD,
                *(
                    "--learning_rate",
                    "5e-3",
                    "--max_steps",
                    "60",
                    "--eval_steps",
                    "20",
                    "--logging_steps",
                    "20",
                ),
            ]
        )
    )
    evaluations = [r for r in records(out) if "eval_discriminator_accuracy" in r]
    assert [r["step"] for r in evaluations] == [20, 40, 60]
    margins = [r["eval_discriminator_accuracy"] - (1 - r["eval_replaced_share"]) for r in evaluations]
    assert max(margins) > 0.005, margins
    assert results["task"] == "replaced-token-detection" and results["objective"] == "rtd"
    assert 0 < results["eval_replaced_share"] < 0.2
    assert results["train_flops"] == results["flops_per_token"] * results["tokens_seen"]
    assert results["num_parameters"] < results["discriminator_parameters"] + results["generator_parameters"]

    classifier = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2)
    encoder = AutoModel.from_pretrained(out)
    saved = load_file(str(out / "model.safetensors"))
    for name, value in encoder.state_dict().items():
        assert torch.equal(saved[name], value), name
    assert classifier.config.model_type == "modernbert"
    assert (
        pipeline("text-classification", model=str(out))("a good story .")[0]["label"]
        in classifier.config.label2id
    )
    features = pipeline("feature-extraction", model=str(out))("a good story .")
    assert len(features[0][0]) == 32
    generator = AutoModelForMaskedLM.from_pretrained(out / GENERATOR_DIR)
    assert (
        generator.get_output_embeddings().weight.data_ptr()
        == generator.get_input_embeddings().weight.data_ptr()
    )
    torch.testing.assert_close(generator.get_input_embeddings().weight, encoder.get_input_embeddings().weight)
    assert pipeline("fill-mask", model=str(out / GENERATOR_DIR))("a good [MASK] .")
    card = (out / "README.md").read_text()
    assert "replaced-token" in card and "generator_size_ratio` 0.25" in card and "lambda = 50.0" in card
    assert "pipeline_tag: feature-extraction" in card

    tuned = run_finetuning(
        *parse_recipe([*finetune_argv, "--model_name_or_path", str(out), "--max_steps", "2"])
    )
    assert tuned["init"] == str(out) and 0.0 <= tuned["test_accuracy"] <= 1.0


def test_gradient_accumulation_matches_one_big_batch(pretrain_argv, tmp_path):
    check_accumulation_matches_one_big_batch([*pretrain_argv, *RTD], tmp_path, tensors)


def test_resume_mid_epoch_is_bitwise(pretrain_argv, tmp_path):
    check_resume_mid_epoch_is_bitwise([*pretrain_argv, *RTD], tmp_path, tensors)
