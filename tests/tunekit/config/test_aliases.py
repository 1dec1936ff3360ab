"""The Trainer's and TRL's spellings: each alias sets tunekit's field, two spellings that disagree in
one recipe (or one command line) are refused in one line, and the command line still wins over the
recipe."""

import json

import pytest
import yaml

from tunekit.cli import run_script
from tunekit.config import parse_recipe
from tunekit.errors import TunekitError
from tunekit.models.gradient_checkpointing import check_gradient_checkpointing
from tunekit.study import StudyArguments


def recipe(tmp_path, **values):
    path = tmp_path / f"r{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def train(argv):
    return parse_recipe(argv)[2]


def refused(argv) -> str:
    with pytest.raises(TunekitError) as error:
        parse_recipe(argv)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "argv, precision",
    [
        (["--bf16"], "bf16"),
        (["--bf16", "true"], "bf16"),
        (["--bf16=true"], "bf16"),
        (["--fp16", "--output_dir", "x"], "fp16"),
        (["--bf16", "false"], "no"),
        (["--bf16", "false", "--fp16", "false"], "no"),
        (["--fp16", "true", "--bf16", "false"], "fp16"),
        (["--bf16", "--mixed_precision", "bf16"], "bf16"),  # agreeing spellings are fine
    ],
)
def test_bf16_and_fp16_set_mixed_precision_on_the_command_line(argv, precision):
    assert train(argv).mixed_precision == precision


def test_bf16_in_a_recipe_and_the_command_line_wins(tmp_path):
    assert train([recipe(tmp_path, bf16=True)]).mixed_precision == "bf16"
    assert train([recipe(tmp_path, fp16=True), "--bf16"]).mixed_precision == "bf16"
    assert train([recipe(tmp_path, mixed_precision="no"), "--bf16"]).mixed_precision == "bf16"
    assert train([recipe(tmp_path, bf16=True), "--mixed_precision", "no"]).mixed_precision == "no"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["--bf16", "--mixed_precision", "fp16"],
            "command line: bf16=true and mixed_precision=fp16 disagree",
        ),
        (["--bf16", "--fp16"], "command line: bf16 and fp16 are both true; choose one"),
        (["--bf16", "maybe"], "bf16 must be true or false, got 'maybe'"),
        (["--use_peft", "--use_lora", "false"], "use_peft=true and use_lora=false disagree"),
    ],
)
def test_disagreeing_spellings_on_the_command_line_are_one_line(argv, expected):
    assert expected in refused(argv)


def test_disagreeing_spellings_in_a_recipe_name_the_file(tmp_path):
    path = recipe(tmp_path, bf16=True, mixed_precision="fp16")
    assert refused([path]) == f"{path}: bf16=true and mixed_precision=fp16 disagree; give one of them"
    path = recipe(tmp_path, bf16=True, fp16=True)
    assert refused([path]).startswith(f"{path}: bf16 and fp16 are both true")


def test_use_peft_is_use_lora(tmp_path):
    assert parse_recipe(["--use_peft"])[0].use_lora is True
    assert parse_recipe([recipe(tmp_path, use_peft=True)])[0].use_lora is True
    assert parse_recipe([recipe(tmp_path, use_peft=True), "--use_peft", "false"])[0].use_lora is False
    # TRL's flag beside tunekit's peft section, disagreeing
    path = recipe(tmp_path, use_peft=False, peft={"r": 4})
    assert refused([path]) == f"{path}: use_peft=false and use_lora=true disagree; give one of them"


def test_config_flag_is_the_positional_recipe(tmp_path):
    path = recipe(tmp_path, learning_rate=1e-3)
    assert train(["--config", path]).learning_rate == 1e-3
    assert train(["--learning_rate", "2e-3", f"--config={path}"]).learning_rate == 2e-3
    other = recipe(tmp_path, learning_rate=3e-3)
    assert refused([other, "--config", path]) == (
        f"--config {path} and the positional recipe {other} name two recipes; give one"
    )


def test_config_flag_replaces_a_scripts_default_recipe(tmp_path):
    seen = []
    default = recipe(tmp_path, learning_rate=9e-3)
    given = recipe(tmp_path, learning_rate=1e-3)
    assert run_script(lambda *configs: seen.append(configs), ["--config", given], default_recipe=default) == 0
    assert seen[0][2].learning_rate == 1e-3


def test_aliases_stay_out_of_a_recipe_without_their_field():
    """A study has no mixed_precision: --bf16 is an unknown argument there, as before."""
    with pytest.raises(TunekitError, match="unknown argument '--bf16'"):
        parse_recipe(["--bf16"], (StudyArguments,))


def test_warmup_steps_replaces_the_ratio(tmp_path):
    assert train(["--warmup_steps", "5"]).warmup_steps_for(100) == 5
    assert train(["--warmup_steps", "0.1"]).warmup_steps_for(100) == 10
    assert train([]).warmup_steps_for(100) == 6  # warmup_ratio 0.06
    # the command line's spelling replaces the recipe's other one, whichever it is
    args = train([recipe(tmp_path, warmup_ratio=0.2), "--warmup_steps", "5"])
    assert args.warmup_steps_for(100) == 5
    args = train([recipe(tmp_path, warmup_steps=50), "--warmup_ratio", "0.2"])
    assert args.warmup_steps == 0 and args.warmup_steps_for(100) == 20
    path = recipe(tmp_path, warmup_steps=50, warmup_ratio=0.2)
    assert refused([path]) == f"{path}: warmup_steps=50 and warmup_ratio=0.2 disagree; give one of them"
    assert "warmup_steps=5 and warmup_ratio=0.1 disagree" in refused(
        ["--warmup_steps", "5", "--warmup_ratio", "0.1"]
    )
    assert "warmup_steps must be a whole number" in refused(["--warmup_steps", "2.5"])


@pytest.mark.parametrize("kind", ["eval", "save"])
def test_eval_and_save_strategies(tmp_path, kind):
    assert getattr(train([f"--{kind}_strategy", "epoch"]), f"{kind}_strategy") == "epoch"
    args = train([f"--{kind}_strategy", "steps", f"--{kind}_steps", "5"])
    assert getattr(args, f"{kind}_steps") == 5
    assert f"{kind}_strategy=steps needs {kind}_steps > 0" in refused([f"--{kind}_strategy", "steps"])
    assert f"{kind}_strategy=no and {kind}_steps=5 disagree" in refused(
        [f"--{kind}_strategy", "no", f"--{kind}_steps", "5"]
    )
    path = recipe(tmp_path, **{f"{kind}_strategy": "epoch", f"{kind}_steps": 5})
    assert refused([path]) == f"{path}: {kind}_strategy=epoch and {kind}_steps=5 disagree; give one of them"
    # a recipe's steps and the command line's strategy: the command line wins
    args = train([recipe(tmp_path, **{f"{kind}_steps": 5}), f"--{kind}_strategy", "no"])
    assert (getattr(args, f"{kind}_strategy"), getattr(args, f"{kind}_steps")) == ("no", 0)
    args = train([recipe(tmp_path, **{f"{kind}_strategy": "no"}), f"--{kind}_steps", "7"])
    assert (getattr(args, f"{kind}_strategy"), getattr(args, f"{kind}_steps")) == (None, 7)
    assert "invalid choice: 'sometimes'" in refused([f"--{kind}_strategy", "sometimes"])


def test_model_loading_fields_parse(tmp_path):
    model_args = parse_recipe(["--trust_remote_code", "--attn_implementation", "eager"])[0]
    assert model_args.trust_remote_code is True and model_args.attn_implementation == "eager"
    assert parse_recipe(["--attn_implementation", "none"])[0].attn_implementation is None
    assert refused(["--model_type", "lstm", "--attn_implementation", "eager"]).startswith(
        "attn_implementation: the LSTM has no attention"
    )


def test_gradient_checkpointing_is_refused_for_the_lstm_in_one_line():
    model_args, _, train_args = parse_recipe(["--model_type", "lstm", "--gradient_checkpointing"])
    with pytest.raises(TunekitError, match="^gradient_checkpointing: the LSTM has no layers to checkpoint"):
        check_gradient_checkpointing(model_args, train_args)


def test_help_names_the_aliases(capsys):
    with pytest.raises(SystemExit):
        parse_recipe(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the epilog
    assert "--bf16 / --fp16" in text and "--use_peft" in text and "--config RECIPE.yaml" in text
    assert "--gradient_checkpointing" in text and "--eval_strategy" in text


def test_saved_recipe_holds_the_resolved_fields_not_the_aliases(tmp_path):
    from tunekit.config import recipe_dict

    saved = recipe_dict(*parse_recipe(["--bf16", "--use_peft"]))
    assert saved["mixed_precision"] == "bf16" and saved["use_lora"] is True
    assert "bf16" not in saved and "use_peft" not in saved
    json.dumps(saved)
