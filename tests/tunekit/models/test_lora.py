import json
from pathlib import Path

import pytest
import torch
import yaml
from peft import AutoPeftModelForSequenceClassification, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from tests.conftest import REPO, TINY_SIZE_FLAGS
from tunekit.config import parse_recipe
from tunekit.data.tokenizer_training import train_byte_level_bpe, train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.build import build_classifier
from tunekit.models.lora import LORA_DEFAULTS, adapter_base_id, apply_lora, lora_config, save_lora
from tunekit.training.tasks import run_finetuning

TEXTS = ["a good film, truly good", "a bad movie, really bad", "good acting and a fine plot"] * 10


def test_peft_section_reads_like_loraconfig_and_bad_input_names_the_field(tmp_path, pretrained_encoder):
    recipe = tmp_path / "lora.yaml"
    section = {"r": 4, "lora_alpha": 8, "target_modules": ["Wqkv"], "modules_to_save": ["head"]}
    recipe.write_text(yaml.safe_dump({"model_name_or_path": str(pretrained_encoder), "peft": section}))
    model_args, _, _ = parse_recipe([str(recipe), "--lora_r", "16"])  # the command line still wins
    assert model_args.use_lora and model_args.lora_r == 16 and model_args.lora_alpha == 8
    assert model_args.lora_target_modules == ["Wqkv"] and model_args.lora_modules_to_save == ["head"]

    recipe.write_text(yaml.safe_dump({"peft": {"lora_alfa": 4}}))
    with pytest.raises(TunekitError, match=r"unknown key peft.lora_alfa \(did you mean 'lora_alpha'\?\)"):
        parse_recipe([str(recipe)])
    with pytest.raises(TunekitError, match="use_lora: peft has no LoRA for nn.LSTM"):
        parse_recipe(["--model_type", "lstm", "--use_lora", "true"])
    with pytest.raises(TunekitError, match="lora_dropout"):
        parse_recipe(["--use_lora", "true", "--lora_dropout", "1.5"])
    model_args, _, _ = parse_recipe(["--use_lora", "true", "--lora_target_modules", "nothing_like_this"])
    model_args.model_name_or_path = str(pretrained_encoder)
    model = build_classifier(model_args, AutoTokenizer.from_pretrained(pretrained_encoder), ["a", "b"])
    with pytest.raises(TunekitError, match="lora_target_modules"):
        apply_lora(model, model_args)


@pytest.mark.parametrize("model_type", list(LORA_DEFAULTS))
def test_defaults_adapt_every_projection_and_train_new_layers_in_full(model_type):
    model_args, _, _ = parse_recipe(["--model_type", model_type, *TINY_SIZE_FLAGS, "--use_lora", "true"])
    train = train_byte_level_bpe if model_args.is_decoder else train_wordpiece
    model = build_classifier(model_args, train(TEXTS, 300, 64), ["neg", "pos"])
    peft_model = get_peft_model(model, lora_config(model_args))
    adapted = {
        name.split(".")[-1] for name, module in peft_model.named_modules() if hasattr(module, "lora_A")
    }
    assert adapted == set(LORA_DEFAULTS[model_type].target_modules)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in name}
    saved = {*LORA_DEFAULTS[model_type].modules_to_save, "score" if model_args.is_decoder else "classifier"}
    assert {name.split(".modules_to_save")[0].split(".")[-1] for name in trainable} == saved
    trainable_count, total = peft_model.get_nb_trainable_parameters()
    assert 0 < trainable_count < total / 2


# Every classifier LoRA adapts, at every pooling it offers: ModernBERT pools by [CLS] or by the mean
# (which peft once rebuilt as [CLS]); the others pool one way (BERT's pooler, a decoder's last token).
RELOAD_CASES = [
    ("modernbert", "cls"),
    ("modernbert", "mean"),
    *((model_type, None) for model_type in LORA_DEFAULTS if model_type != "modernbert"),
]


@pytest.mark.parametrize(("model_type", "pooling"), RELOAD_CASES, ids=[f"{t}-{p}" for t, p in RELOAD_CASES])
def test_adapter_reloads_to_the_trained_model_through_peft_and_transformers(
    model_type, pooling, tmp_path, monkeypatch
):
    pooling_flag = ["--classifier_pooling", pooling] if pooling else []
    model_args, _, _ = parse_recipe(
        [
            "--model_type",
            model_type,
            *TINY_SIZE_FLAGS,
            *pooling_flag,
            "--use_lora",
            "true",
            "--merge_adapter",
            "true",
        ]
    )
    train = train_byte_level_bpe if model_args.is_decoder else train_wordpiece
    tokenizer = train(TEXTS, 300, 64)
    torch.manual_seed(0)
    classifier = build_classifier(model_args, tokenizer, ["neg", "pos"])
    model_args.model_name_or_path = "a/pretrained-model"  # apply_lora requires one; unused here
    peft_model = apply_lora(classifier, model_args)
    with torch.no_grad():  # lora_B starts at zero; make the adapter change the outputs
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    peft_model.eval()
    # Rows of different lengths: padding is where mean and [CLS] pooling (and last-token) differ.
    batch = tokenizer(
        ["good", "a bad movie, really bad and long", TEXTS[2]], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = peft_model(**batch).logits

    monkeypatch.chdir(tmp_path)
    run = Path("run")  # relative, as `--output_dir run` is
    run.mkdir()
    tokenizer.save_pretrained(run)
    save_lora(peft_model, run, model_args, tokenizer)
    base = json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str(tmp_path / "run" / "base") and Path(base).is_absolute()
    assert not (run / "model.safetensors").exists()  # the adapter dir holds only the adapter
    monkeypatch.chdir(REPO)  # a user loading it from anywhere else

    adapter_dir = tmp_path / "run"
    merged = AutoModelForSequenceClassification.from_pretrained(adapter_dir / "merged").eval()
    with_peft = AutoPeftModelForSequenceClassification.from_pretrained(adapter_dir).eval()
    with_transformers = AutoModelForSequenceClassification.from_pretrained(adapter_dir).eval()
    for model in (merged, with_peft, with_transformers):
        assert model.config.id2label == {0: "neg", 1: "pos"}
        if pooling:
            assert model.config.classifier_pooling == pooling
        with torch.no_grad():
            torch.testing.assert_close(model(**batch).logits, expected, atol=1e-5, rtol=1e-5)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        predicted = merged(**tokenizer(TEXTS[:3], padding=True, return_tensors="pt")).logits.argmax(-1)
    for model in (str(adapter_dir), str(adapter_dir / "merged")):
        classify = pipeline("text-classification", model=model)
        assert [p["label"] for p in classify(TEXTS[:3])] == [
            merged.config.id2label[i] for i in predicted.tolist()
        ]


def test_adapter_names_its_saved_base_or_the_hub_id_given(tmp_path):
    model_args, _, _ = parse_recipe(["--model_name_or_path", str(tmp_path), "--use_lora", "true"])
    assert adapter_base_id(model_args, Path("out")) == str(Path.cwd() / "out" / "base")
    model_args.lora_base_model_id = "org/explicit"
    assert adapter_base_id(model_args, Path("out")) == "org/explicit"


def test_lora_run_writes_adapter_counts_and_trains_only_adapters(pretrained_encoder, finetune_argv, tmp_path):
    results = run_finetuning(
        *parse_recipe(
            [*finetune_argv, "--model_name_or_path", str(pretrained_encoder), "--use_lora", "true"]
            + ["--max_steps", "6", "--learning_rate", "5e-3", "--classifier_pooling", "mean"]
            + ["--merge_adapter", "true"]
        )
    )
    out = tmp_path / "finetune"
    assert results["trainable_parameters"] < results["total_parameters"] / 2
    saved = json.loads((out / "results.json").read_text())
    assert saved["trainable_parameters"] == results["trainable_parameters"]
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert any("lora_B" in name and adapter[name].abs().sum() > 0 for name in adapter)  # it trained
    assert {"adapter_config.json", "tokenizer.json", "recipe.yaml"} <= {p.name for p in out.iterdir()}
    assert yaml.safe_load((out / "recipe.yaml").read_text())["use_lora"] is True
    base = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str(out / "base") and (out / "base" / "config.json").is_file()
    assert f"`base_model_name_or_path` is the absolute local path `{base}`" in (out / "README.md").read_text()
    # The run's adapter, reloaded by peft, is the merged model (mean pooling: the case peft once lost).
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["good", "a bad movie, really bad and long"], padding=True, return_tensors="pt")
    adapter_model = AutoPeftModelForSequenceClassification.from_pretrained(out).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(out / "merged").eval()
    assert adapter_model.config.classifier_pooling == merged.config.classifier_pooling == "mean"
    with torch.no_grad():
        torch.testing.assert_close(
            adapter_model(**batch).logits, merged(**batch).logits, atol=1e-5, rtol=1e-5
        )
