"""The model card every run writes: metadata via ModelCardData, model-index, and a body a user can act on."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from tunekit.config import parse_recipe
from tunekit.hub.card import build_model_card
from tunekit.training.tasks import run_finetuning, run_pretraining


@pytest.fixture(scope="module")
def runs(corpus_files, tmp_path_factory) -> dict[str, Path]:
    """A tiny MLM pretraining and a classifier fine-tuned from it (two optimizer steps each)."""
    from tests.conftest import QUIET, TINY_MODEL

    root = tmp_path_factory.mktemp("card-runs")
    common = [*TINY_MODEL, *QUIET, "--max_steps", "2", "--per_device_train_batch_size", "8"]
    run_pretraining(
        *parse_recipe(
            ["--train_file", str(corpus_files["unlabeled"]), *common, "--max_seq_length", "32"]
            + ["--output_dir", str(root / "pretrain"), "--license", "apache-2.0"]
        )
    )
    run_finetuning(
        *parse_recipe(
            ["--train_file", str(corpus_files["train"]), "--validation_file", str(corpus_files["validation"])]
            + ["--test_file", str(corpus_files["test"]), *common, "--max_seq_length", "48"]
            + ["--model_name_or_path", str(root / "pretrain"), "--output_dir", str(root / "finetune")]
            + ["--label_names", "negative", "positive"]
        )
    )
    return {"pretrain": root / "pretrain", "finetune": root / "finetune"}


def variant(run: Path, tmp_path: Path, **recipe_changes) -> Path:
    """A copy of a run's record with some recipe fields changed (the card reads only these files)."""
    copy = tmp_path / run.name
    copy.mkdir(parents=True)
    for name in ("results.json", "tokenizer_config.json"):
        shutil.copy(run / name, copy / name)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text()) | recipe_changes
    (copy / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return copy


def test_a_finetuning_run_writes_a_card_with_its_validation_and_test_results(runs):
    card = ModelCard.load(runs["finetune"] / "README.md")
    results = json.loads((runs["finetune"] / "results.json").read_text())
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert {"tunekit", "modernbert"} <= set(data.tags) and data.metrics == ["accuracy", "f1"]
    assert data.datasets is None and data.base_model is None  # local files; an unpushed pretraining
    assert data.model_name == "finetune"
    found = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert found == {
        (split, metric): round(results[f"{prefix}_{metric}"], 4)
        for split, prefix in (("validation", "eval"), ("test", "test"))
        for metric in ("accuracy", "f1")
    }
    assert all(r.task_type == "text-classification" for r in data.eval_results)
    for section in ("## How it was trained", "## Results", "## How to use", "## Limitations", "recipe.yaml"):
        assert section in card.text
    assert f"{results['tokens_seen']:,} tokens seen" in card.text
    assert "`negative`, `positive`" in card.text and "wall time" in card.text and "FLOPs" in card.text
    assert f'pipeline("text-classification", model="{runs["finetune"]}")' in card.text


def test_a_pretraining_card_is_a_fill_mask_card_with_its_license_and_perplexity(runs):
    card = ModelCard.load(runs["pretrain"] / "README.md")
    assert card.data.pipeline_tag == "fill-mask" and card.data.license == "apache-2.0"
    (perplexity,) = [r for r in card.data.eval_results if r.metric_type == "perplexity"]
    assert perplexity.dataset_split == "validation" and perplexity.task_type == "fill-mask"
    assert 'print(fill("This film is [MASK]."))' in card.text
    assert "AutoModelForMaskedLM.from_pretrained" in card.text


@pytest.mark.parametrize(
    ("init", "pretraining_recipe", "expected"),
    [
        ("answerdotai/ModernBERT-base", None, "answerdotai/ModernBERT-base"),  # a Hub model
        ("PRETRAIN", {"push_to_hub": True, "hub_model_id": "acme/tiny-mlm"}, "acme/tiny-mlm"),
        ("PRETRAIN", {"push_to_hub": False, "hub_model_id": "acme/tiny-mlm"}, None),  # never pushed
    ],
)
def test_base_model_is_a_hub_id_or_nothing(runs, tmp_path, init, pretraining_recipe, expected):
    model_name_or_path = init
    if init == "PRETRAIN":
        pretraining = variant(runs["pretrain"], tmp_path / "p", **pretraining_recipe)
        model_name_or_path = str(pretraining)
    run = variant(runs["finetune"], tmp_path / "f", model_name_or_path=model_name_or_path)
    card = build_model_card(run, repo_id="acme/classifier")
    assert card.data.base_model == expected
    assert ModelCard(str(card)).data.base_model == expected  # survives the YAML round trip


def test_datasets_are_hub_ids_never_local_paths(runs, tmp_path):
    hub = variant(runs["finetune"], tmp_path, train_file=None, dataset_name="stanfordnlp/imdb")
    card = build_model_card(hub, repo_id="acme/imdb")
    assert card.data.datasets == ["stanfordnlp/imdb"]
    assert {r.dataset_type for r in card.data.eval_results} == {"stanfordnlp/imdb"}
    assert "https://huggingface.co/datasets/stanfordnlp/imdb" in card.text
    shutil.rmtree(hub)
    local = variant(runs["finetune"], tmp_path, train_file=None, dataset_name=str(tmp_path))
    card = build_model_card(local, repo_id="acme/local")
    assert card.data.datasets is None
    assert str(tmp_path) not in yaml.safe_dump(card.data.to_dict())


def test_an_lstm_card_gives_both_ways_to_load(runs, tmp_path):
    lstm = variant(runs["finetune"], tmp_path, model_type="lstm", model_name_or_path=None)
    card = build_model_card(lstm, repo_id="acme/lstm")
    # The Hub's convention for a model whose code ships in the repository (issue 30).
    assert card.data.library_name == "transformers" and "custom_code" in card.data.tags
    assert card.data.pipeline_tag == "text-classification"
    assert "import tunekit\n" in card.text
    assert 'pipeline("text-classification", model="acme/lstm", trust_remote_code=True)' in card.text
    assert (
        'AutoModelForSequenceClassification.from_pretrained("acme/lstm", trust_remote_code=True)' in card.text
    )


def recipe_block(card: ModelCard) -> str:
    return card.text.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_a_continued_pretraining_card_names_its_start_not_from_scratch(runs, tmp_path):
    scratch = build_model_card(runs["pretrain"])
    assert "pretrained from scratch by tunekit" in scratch.text
    continued = variant(runs["pretrain"], tmp_path, model_name_or_path="answerdotai/ModernBERT-base")
    card = build_model_card(continued)
    assert "continued pretraining of `answerdotai/ModernBERT-base` by tunekit" in card.text
    assert "from scratch" not in card.text
    assert card.data.base_model == "answerdotai/ModernBERT-base"


def test_the_cards_recipe_shows_the_values_the_run_resolved_and_marks_unused_ones(runs, tmp_path):
    run = variant(
        runs["pretrain"], tmp_path, vocab_size=4096, max_position_embeddings=512, mixed_precision="auto"
    )
    config = json.loads((runs["pretrain"] / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config))
    built_vocab, built_positions = config["vocab_size"], config["max_position_embeddings"]
    assert (built_vocab, built_positions) != (4096, 512)
    block = recipe_block(build_model_card(run))
    shown = yaml.safe_load(block)
    results = json.loads((run / "results.json").read_text())
    assert shown["vocab_size"] == built_vocab and shown["max_position_embeddings"] == built_positions
    assert shown["mixed_precision"] == results["mixed_precision"] != "auto"
    assert f"vocab_size: {built_vocab}  # as built; the recipe said 4096" in block
    assert "mixed_precision: 'no'  # as run; the recipe said 'auto'" in block
    assert "lora_r: 8  # unused (use_lora is false)" in block
    assert "bidirectional: true  # unused (LSTM only)" in block
    assert "classifier_pooling: null  # unused (pretraining)" in block

    lstm = build_model_card(variant(runs["pretrain"], tmp_path / "lstm", model_type="lstm"))
    assert "num_attention_heads: 2  # unused by an LSTM" in recipe_block(lstm)


def test_the_card_lists_the_framework_versions_the_run_used(runs):
    import accelerate
    import datasets
    import tokenizers
    import torch
    import transformers

    results = json.loads((runs["finetune"] / "results.json").read_text())
    assert set(results["framework_versions"]) == {
        "transformers",
        "torch",
        "datasets",
        "tokenizers",
        "accelerate",
    }
    text = ModelCard.load(runs["finetune"] / "README.md").text
    section = text.split("### Framework versions\n\n", 1)[1]
    for label, module in [
        ("Transformers", transformers),
        ("Pytorch", torch),
        ("Datasets", datasets),
        ("Tokenizers", tokenizers),
        ("Accelerate", accelerate),
    ]:
        assert f"- {label} {module.__version__}\n" in section
    assert "PEFT" not in section  # no LoRA in this run


def test_the_cards_flops_formula_is_the_one_tunekit_flops_computes(runs, tmp_path):
    from tunekit.training.flops import training_flops_per_token

    text = ModelCard.load(runs["pretrain"] / "README.md").text
    assert "6 x weights x tokens" not in text
    assert "(6 x non-embedding weights + 12 x layers x width x sequence length) per token" in text
    assert training_flops_per_token(1000, 2, 32, 64) == 6 * 1000 + 12 * 2 * 32 * 64
    lstm = build_model_card(variant(runs["pretrain"], tmp_path, model_type="lstm")).text
    assert "6 x non-embedding weights per token (an LSTM has no attention term)" in lstm
    assert training_flops_per_token(1000, 2, 32, 64, attention=False) == 6 * 1000
