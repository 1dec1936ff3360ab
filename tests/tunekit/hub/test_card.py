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
    assert card.data.library_name == "tunekit" and card.data.pipeline_tag == "text-classification"
    assert "import tunekit\n" in card.text
    assert 'pipeline("text-classification", model="acme/lstm", trust_remote_code=True)' in card.text
    assert (
        'AutoModelForSequenceClassification.from_pretrained("acme/lstm", trust_remote_code=True)' in card.text
    )
