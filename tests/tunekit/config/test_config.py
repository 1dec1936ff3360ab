from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tunekit.config import RECIPE_DATACLASSES, parse_recipe
from tunekit.errors import TunekitError

# A study recipe names its arms; every other recipe outside accelerate/ is one run's.
STUDY_RECIPES = sorted(
    p for p in (REPO / "recipes").rglob("*.yaml") if "arms" in yaml.safe_load(p.read_text())
)
RUN_RECIPES = sorted(
    p for p in (REPO / "recipes").rglob("*.yaml") if "accelerate" not in p.parts and p not in STUDY_RECIPES
)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_values_then_cli_overrides(tmp_path):
    recipe = write(tmp_path, "learning_rate: 3e-4\nseed: 7\nbidirectional: false\nnum_hidden_layers: 3\n")
    model, data, train = parse_recipe([recipe, "--seed", "11"])
    assert train.learning_rate == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string; we still type it
    assert train.seed == 11
    assert model.bidirectional is False and model.num_hidden_layers == 3
    assert data.text_column == "text"  # untouched defaults survive


def test_list_field_from_yaml(tmp_path):
    recipe = write(tmp_path, f"train_file: [{REPO / 'pyproject.toml'}, {REPO / 'Makefile'}]\n")
    _, data, _ = parse_recipe([recipe])
    assert data.train_file == [str(REPO / "pyproject.toml"), str(REPO / "Makefile")]


def test_unknown_yaml_key_names_it(tmp_path):
    recipe = write(tmp_path, "lerning_rate: 0.1\n")
    with pytest.raises(TunekitError, match=r"unknown key 'lerning_rate' \(did you mean 'learning_rate'\?\)"):
        parse_recipe([recipe])


def test_unknown_cli_flag_names_it():
    with pytest.raises(TunekitError, match="unknown argument '--warmup'"):
        parse_recipe(["--warmup", "3"])


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--learning_rate", "fast"], "learning_rate"),
        (["--seed", "1.5"], "seed"),
        (["--model_type", "gpt9"], "model_type"),
        (["--dropout", "1.5"], "dropout"),
        (["--per_device_train_batch_size", "0"], "per_device_train_batch_size"),
        (["--hidden_size", "30", "--num_attention_heads", "4"], "hidden_size"),
        (["--model_type", "bert", "--classifier_pooling", "mean"], "classifier_pooling"),
        (["--test_file", "/nonexistent.csv"], "test_file"),
        (["--padding_free", "true"], "padding_free"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_field(argv, field):
    with pytest.raises(TunekitError) as info:
        parse_recipe(argv)
    message = str(info.value)
    assert field in message and "\n" not in message


def test_wrong_type_in_yaml_names_file_and_key(tmp_path):
    recipe = write(tmp_path, "max_steps: ten\n")
    with pytest.raises(TunekitError, match=r"recipe.yaml: argument --max_steps.*invalid int value: 'ten'"):
        parse_recipe([recipe])


def test_missing_recipe_and_non_mapping(tmp_path):
    with pytest.raises(TunekitError, match="recipe not found"):
        parse_recipe([str(tmp_path / "nope.yaml")])
    with pytest.raises(TunekitError, match="mapping"):
        parse_recipe([write(tmp_path, "- a\n- b\n")])


def test_help_lists_every_field(capsys):
    with pytest.raises(SystemExit):
        parse_recipe(["--help"])
    text = capsys.readouterr().out
    import dataclasses

    for cls in RECIPE_DATACLASSES:
        for field in dataclasses.fields(cls):
            assert f"--{field.name}" in text
    assert "Peak AdamW learning rate" in text


@pytest.mark.parametrize("recipe", RUN_RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_recipe_parses_and_documents_its_command(recipe):
    parse_recipe([str(recipe)])
    header = "".join(line for line in recipe.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert str(recipe.relative_to(REPO)) in header and "scripts/" in header


def test_accelerate_configs_name_their_command():
    configs = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"cpu", "single_gpu", "multi_gpu", "fsdp"}
    for config in configs:
        assert "accelerate launch --config_file recipes/accelerate/" in config.read_text()


@pytest.mark.parametrize("recipe", STUDY_RECIPES, ids=lambda p: str(p.relative_to(REPO / "recipes")))
def test_study_recipes_parse_and_name_their_stage_recipes(recipe):
    from tunekit.study import StudyArguments

    (study,) = parse_recipe([str(recipe)], (StudyArguments,))
    assert f"scripts/study.py {recipe.relative_to(REPO)}" in recipe.read_text()
    for name in (
        "transformer_pretrain_recipe",
        "lstm_pretrain_recipe",
        "transformer_finetune_recipe",
        "transformer_scratch_recipe",
        "lstm_finetune_recipe",
    ):
        assert (REPO / getattr(study, name)).is_file(), name


def test_yaml_null_clears_an_optional_text_field(tmp_path):
    _, data, _ = parse_recipe([write(tmp_path, "validation_split: null\nmax_train_samples: null\n")])
    assert data.validation_split is None and data.max_train_samples is None


def test_padding_free_is_refused_with_what_it_needs():
    with pytest.raises(TunekitError, match="padding_free needs attn_implementation=flash_attention_2"):
        parse_recipe(["--padding_free", "true"])
