import json

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from tests.conftest import QUIET, TINY_SIZE_FLAGS
from tunekit.config import parse_recipe
from tunekit.data.collators import pretraining_collator
from tunekit.data.tokenization import tokenize_and_pack
from tunekit.data.tokenizer_training import train_byte_level_bpe
from tunekit.errors import TunekitError
from tunekit.models.build import build_pretraining_model
from tunekit.training.step import summed_loss
from tunekit.training.tasks import run_finetuning, run_pretraining

TEXTS = ["the film was good, and the plot fine.", "Ünïcode and émojis 🎬 survive bytes."] * 20


def test_byte_level_bpe_round_trips_any_text_and_saves_as_a_plain_tokenizer(tmp_path):
    tokenizer = train_byte_level_bpe(TEXTS, 300, 64)
    encoded = tokenizer(TEXTS[1])["input_ids"]
    assert encoded[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in encoded[1:]
    assert tokenizer.decode(encoded, skip_special_tokens=True) == TEXTS[1]
    assert tokenizer.pad_token_id != tokenizer.eos_token_id  # last-token pooling needs a distinct pad
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)(TEXTS[1])["input_ids"] == encoded
    blocks = tokenize_and_pack(tokenizer_input(TEXTS), tokenizer, "text", block_size=16)
    assert all(len(ids) == 16 for ids in blocks["input_ids"])
    assert tokenizer.eos_token_id in blocks["input_ids"][0] + blocks["input_ids"][1]  # documents separated


def tokenizer_input(texts: list[str]) -> Dataset:
    return Dataset.from_dict({"text": texts})


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_clm_labels_are_next_tokens_and_the_loop_loss_is_the_models_own(model_type):
    model_args, data_args, train_args = parse_recipe(["--model_type", model_type, *TINY_SIZE_FLAGS])
    tokenizer = train_byte_level_bpe(TEXTS, 300, 64)
    blocks = tokenize_and_pack(tokenizer_input(TEXTS), tokenizer, "text", block_size=16)
    batch = pretraining_collator(model_args, tokenizer, 0.15, 0)(
        [dict(row) for row in blocks.select(range(4))]
    )
    assert torch.equal(batch["labels"][:, :-1], batch["input_ids"][:, 1:])
    assert (batch["labels"][:, -1] == -100).all()

    model = build_pretraining_model(model_args, tokenizer).eval()
    with torch.no_grad():
        own = model(input_ids=batch["input_ids"], labels=batch["input_ids"])  # transformers shifts itself
        loss_sum, count = summed_loss(own.logits, batch["labels"])
    torch.testing.assert_close(loss_sum.sum() / count.sum(), own.loss)


def test_objective_must_fit_the_model_type():
    with pytest.raises(TunekitError, match="objective=clm needs model_type llama or gpt2, got bert"):
        parse_recipe(["--model_type", "bert", "--objective", "clm"])
    with pytest.raises(
        TunekitError, match="objective=mlm needs model_type modernbert or bert or roberta or distilbert"
    ):
        parse_recipe(["--model_type", "gpt2", "--objective", "mlm"])


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_clm_pretraining_then_classification_with_last_token_pooling(
    model_type, corpus_files, finetune_argv, tmp_path
):
    pretrain = tmp_path / "clm"
    argv = [
        "--train_file",
        str(corpus_files["unlabeled"]),
        "--train_split",
        "train",
        *TINY_SIZE_FLAGS,
        *QUIET,
    ]
    results = run_pretraining(
        *parse_recipe(
            [*argv, "--model_type", model_type, "--objective", "clm", "--max_seq_length=32"]
            + ["--max_steps=25", "--learning_rate=3e-3", "--logging_steps=1", f"--output_dir={pretrain}"]
        )
    )
    losses = [json.loads(line).get("loss") for line in (pretrain / "metrics.jsonl").read_text().splitlines()]
    losses = [loss for loss in losses if loss is not None]
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5
    assert results["task"] == "causal-lm" and results["eval_perplexity"] == pytest.approx(
        torch.tensor(results["eval_loss"]).exp().item(), rel=1e-4
    )
    assert AutoModelForCausalLM.from_pretrained(pretrain).config.model_type == model_type
    generate = pipeline("text-generation", model=str(pretrain))
    text = generate("the movie", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("the movie") and len(text) > len("the movie")

    results = run_finetuning(
        *parse_recipe(
            [
                *finetune_argv,
                "--model_type",
                model_type,
                "--model_name_or_path",
                str(pretrain),
                "--max_steps=4",
            ]
        )
    )
    assert 0.0 <= results["test_accuracy"] <= 1.0
    out = tmp_path / "finetune"
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    texts = ["a short one", "a considerably longer review that needs no padding at all"]
    padded = tokenizer(texts, padding=True, return_tensors="pt")
    assert (padded["input_ids"][0] == tokenizer.pad_token_id).any()  # right padding in the batch
    with torch.no_grad():
        together = model(**padded).logits
        alone = torch.cat([model(**tokenizer(text, return_tensors="pt")).logits for text in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)  # pooled at the last real token
    assert pipeline("text-classification", model=str(out))(texts[0])[0]["label"] in model.config.label2id
