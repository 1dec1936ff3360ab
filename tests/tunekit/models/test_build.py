import sys

import pytest
import torch
from transformers import AutoModelForSequenceClassification

import tunekit  # noqa: F401  (registers the LSTM with the Auto classes)
from tests.conftest import TINY_FIELDS
from tests.processes import run_bounded
from tunekit.config import ModelArguments
from tunekit.data.collators import PaddingCollator
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.errors import TunekitError
from tunekit.models.build import build_classifier, build_pretraining_model
from tunekit.models.lstm import LENGTHS, LSTMConfig, LSTMForSequenceClassification
from tunekit.models.lstm_lm import LSTMForLanguageModeling

TEXTS = ["a truly gravolen film", "the plot was not tesmirak", "i watched it with my sister"] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(TEXTS, vocab_size=120, model_max_length=64)


def tiny(model_type: str, **overrides) -> ModelArguments:
    return ModelArguments(**{"model_type": model_type, **TINY_FIELDS, **overrides})


def batch(tokenizer):
    return tokenizer(TEXTS[:3], padding=True, return_tensors="pt")


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
def test_lstm_round_trips_through_auto_classes(tokenizer, tmp_path, pooling):
    model = build_classifier(tiny("lstm", classifier_pooling=pooling), tokenizer, ["negative", "positive"])
    assert isinstance(model, LSTMForSequenceClassification)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    inputs = batch(tokenizer)
    assert type(reloaded) is LSTMForSequenceClassification
    assert reloaded.config.id2label == {0: "negative", 1: "positive"}
    torch.testing.assert_close(model.eval()(**inputs).logits, reloaded(**inputs).logits)


def test_lstm_ignores_padding(tokenizer):
    model = build_classifier(tiny("lstm"), tokenizer, ["neg", "pos"]).eval()
    alone = tokenizer(TEXTS[:1], return_tensors="pt")
    padded = tokenizer(TEXTS[:1], padding="max_length", max_length=20, return_tensors="pt")
    torch.testing.assert_close(model(**alone).logits, model(**padded).logits)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_lstm_given_host_lengths_computes_what_the_mask_gives(tokenizer, pooling):
    """The collators' host lengths (no device read) stand in for the mask: same logits, padded or not."""
    model = build_classifier(tiny("lstm", classifier_pooling=pooling), tokenizer, ["n", "p"]).eval()
    rows = [{"input_ids": ids} for ids in tokenizer(TEXTS[:3])["input_ids"]]
    padded = PaddingCollator(tokenizer, with_lengths=True)(rows)
    assert "attention_mask" in padded and padded[LENGTHS] == tuple(len(row["input_ids"]) for row in rows)
    expected = model(padded["input_ids"], padded["attention_mask"]).logits
    torch.testing.assert_close(model(**padded).logits, expected)
    full = PaddingCollator(tokenizer, with_lengths=True)(rows[:1])
    assert "attention_mask" not in full  # no padding: the lengths alone say so
    torch.testing.assert_close(model(**full).logits, expected[:1])
    lm = build_pretraining_model(tiny("lstm"), tokenizer).eval()
    block = {"input_ids": full["input_ids"], LENGTHS: full[LENGTHS]}
    torch.testing.assert_close(lm(**block).logits, lm(full["input_ids"]).logits)


@pytest.mark.parametrize("fp32_recurrence", [True, False])
def test_lstm_recurrence_precision_under_bf16_autocast(tokenizer, fp32_recurrence):
    model = build_classifier(tiny("lstm", lstm_fp32_recurrence=fp32_recurrence), tokenizer, ["n", "p"])
    seen = []
    model.lstm.encoder.register_forward_hook(lambda module, args, output: seen.append(output[0].data.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(**batch(tokenizer))
    assert seen == [torch.float32 if fp32_recurrence else torch.bfloat16]


def test_transformer_from_config_and_from_pretrained(tokenizer, tmp_path):
    mlm = build_pretraining_model(tiny("modernbert"), tokenizer)
    # Embedding rows are padded to a multiple of 64 (tensor-core friendly); the tokenizer is unchanged.
    assert mlm.config.vocab_size == -(-len(tokenizer) // 64) * 64
    assert mlm.config.pad_token_id == tokenizer.pad_token_id
    mlm.save_pretrained(tmp_path)
    classifier = build_classifier(
        tiny("modernbert", model_name_or_path=str(tmp_path), classifier_pooling="mean"),
        tokenizer,
        ["neg", "pos"],
    )
    torch.testing.assert_close(
        classifier.model.embeddings.tok_embeddings.weight, mlm.model.embeddings.tok_embeddings.weight
    )
    assert classifier.config.classifier_pooling == "mean" and classifier.config.num_labels == 2
    with pytest.raises(TunekitError, match="holds a modernbert model but model_type is lstm"):
        build_classifier(tiny("lstm", model_name_or_path=str(tmp_path)), tokenizer, ["neg", "pos"])
    with pytest.raises(TunekitError, match="model_name_or_path: cannot load"):
        build_classifier(tiny("modernbert", model_name_or_path=str(tmp_path / "nope")), tokenizer, ["a", "b"])
    lstm_lm = build_pretraining_model(tiny("lstm"), tokenizer)
    assert type(lstm_lm).__name__ == "LSTMForLanguageModeling"


@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
def test_other_stock_architectures_build(tokenizer, model_type):
    model = build_classifier(tiny(model_type), tokenizer, ["neg", "pos"])
    assert model(**batch(tokenizer)).logits.shape == (3, 2)


def test_saved_classifier_works_in_pipeline_without_tunekit(tokenizer, tmp_path):
    model = build_classifier(
        tiny("modernbert", classifier_pooling="mean"), tokenizer, ["negative", "positive"]
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    code = (
        "import sys\nfrom transformers import pipeline\n"
        f"clf = pipeline('text-classification', model={str(tmp_path)!r}, device='cpu')\n"
        "out = clf(['a truly gravolen film', 'the plot was not tesmirak'])\n"
        "assert all(o['label'] in ('negative', 'positive') for o in out), out\n"
        "assert 'tunekit' not in sys.modules\nprint('ok')\n"
    )
    result = run_bounded(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_lstm_language_model_ties_its_decoder_and_hands_its_encoder_to_the_classifier(tokenizer, tmp_path):
    lm = build_pretraining_model(tiny("lstm"), tokenizer).eval()
    inputs = batch(tokenizer)
    output = lm(**inputs, output_hidden_states=True)
    (states,) = output.hidden_states
    steps = inputs["input_ids"].shape[1]
    assert states.shape == (3, steps, 2 * 32) and output.logits.shape == (3, 2 * steps, len(tokenizer))
    # Tied: next-token logits are the forward states against the input embeddings, plus a bias.
    expected = states[..., :32] @ lm.lstm.embeddings.weight.T + lm.decoder_bias
    torch.testing.assert_close(output.logits[:, :steps], expected)
    lm.save_pretrained(tmp_path)
    classifier = build_classifier(tiny("lstm", model_name_or_path=str(tmp_path)), tokenizer, ["n", "p"])
    torch.testing.assert_close(classifier.lstm.embeddings.weight, lm.lstm.embeddings.weight)
    torch.testing.assert_close(classifier.lstm.eval()(inputs["input_ids"], inputs["attention_mask"]), states)
    untied = LSTMForLanguageModeling(
        LSTMConfig(vocab_size=len(tokenizer), hidden_size=32, tie_word_embeddings=False)
    )
    assert untied(**inputs).logits.shape == output.logits.shape


def test_lstm_language_model_never_sees_the_token_it_predicts(tokenizer):
    lm = build_pretraining_model(tiny("lstm"), tokenizer).eval()
    ids = batch(tokenizer)["input_ids"][:1]
    steps, t = ids.shape[1], 3
    changed = ids.clone()
    changed[0, t] = (changed[0, t] + 1) % len(tokenizer)
    before, after = lm(ids).logits[0], lm(changed).logits[0]
    # Forward predictions up to position t-1 (of tokens 1..t) must not move when token t changes,
    # nor backward predictions from t+1 on (of tokens t..).
    torch.testing.assert_close(before[:t], after[:t])
    torch.testing.assert_close(before[steps + t + 1 :], after[steps + t + 1 :])
    assert not torch.allclose(before[t], after[t])
    with pytest.raises(TunekitError, match="num_hidden_layers: a bidirectional LSTM language model must"):
        build_pretraining_model(tiny("lstm", num_hidden_layers=2), tokenizer)
    stacked = build_pretraining_model(tiny("lstm", num_hidden_layers=2, bidirectional=False), tokenizer)
    assert stacked.config.num_hidden_layers == 2


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "modernbert"])
def test_vocabulary_rows_padded_to_64_and_never_predicted(tokenizer, tmp_path, model_type):
    from transformers import AutoModelForMaskedLM, pipeline

    from tunekit.models.build import PADDING_ROW_BIAS

    model = build_pretraining_model(tiny(model_type), tokenizer)
    real = len(tokenizer)
    assert real % 64 and model.config.vocab_size == -(-real // 64) * 64
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size
    assert (model.get_output_embeddings().bias[real:] == PADDING_ROW_BIAS).all()
    # The padded rows change no loss: their softmax probability is exactly 0.
    inputs = batch(tokenizer)
    logits = model.eval()(**inputs).logits
    assert logits.softmax(-1)[..., real:].max() == 0
    torch.testing.assert_close(logits[..., :real].log_softmax(-1), logits.log_softmax(-1)[..., :real])
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    fill = pipeline("fill-mask", model=str(tmp_path), tokenizer=str(tmp_path), top_k=real)
    assert all(guess["token"] < real for guess in fill(f"a truly {tokenizer.mask_token} film"))
    assert AutoModelForMaskedLM.from_pretrained(tmp_path).config.vocab_size == model.config.vocab_size
