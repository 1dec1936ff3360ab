import torch
from transformers import AutoConfig, AutoModelForMaskedLM

from tunekit.data.synthetic import build_synthetic_corpus
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.models.lstm import LSTMConfig
from tunekit.models.lstm_lm import LSTMForLanguageModeling
from tunekit.study.arms import pretraining_named
from tunekit.study.probes import describe_probes, linear_probe, masked_word_probe, next_word_probe


def test_probes_run_on_a_random_encoder_and_return_accuracies():
    corpus = build_synthetic_corpus(seed=0, num_unlabeled=400, num_train=40, num_validation=10, num_test=40)
    tokenizer = train_wordpiece(corpus["unlabeled"]["text"], vocab_size=2000, model_max_length=64)
    config = AutoConfig.for_model(
        "modernbert",
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        mask_token_id=tokenizer.mask_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)  # the weights, and so the features, must not depend on the tests run before
    model = AutoModelForMaskedLM.from_config(config)
    masked = masked_word_probe(model, tokenizer, seed=0)
    assert 0.0 <= masked <= 1.0
    train, test = corpus["train"], corpus["test"]
    linear = linear_probe(model, tokenizer, train["text"], train["label"], test["text"], test["label"])
    assert 0.0 <= linear <= 1.0
    # Features that carry the label must be read by the probe: train and test on the same texts,
    # with little regularisation (40 texts, 32 features).
    memorised = linear_probe(
        model, tokenizer, train["text"], train["label"], train["text"], train["label"], c=1e3
    )
    assert memorised >= 0.9


def test_lstm_language_model_probes_read_its_forward_direction_and_states():
    corpus = build_synthetic_corpus(seed=0, num_unlabeled=400, num_train=40, num_validation=10, num_test=40)
    tokenizer = train_wordpiece(corpus["unlabeled"]["text"], vocab_size=2000, model_max_length=64)
    config = LSTMConfig(vocab_size=len(tokenizer), hidden_size=32, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LSTMForLanguageModeling(config)
    good, bad = tokenizer.convert_tokens_to_ids(["good", "bad"])
    # An LM that always prefers "good" after "X means" is right on exactly the positive half.
    with torch.no_grad():
        model.decoder_bias[good] = 100.0
    assert next_word_probe(model, tokenizer, seed=0) == 0.5
    with torch.no_grad():
        model.decoder_bias[bad] = 200.0
    assert next_word_probe(model, tokenizer, seed=0) == 0.5
    train = corpus["train"]
    memorised = linear_probe(
        model, tokenizer, train["text"], train["label"], train["text"], train["label"], c=1e3
    )
    assert memorised >= 0.9
    notes = describe_probes(
        pretraining_named("lstm").probe, {"linear_probe_accuracy": 0.891, "next_word_probe_accuracy": 1.0}
    )
    assert notes[0].endswith("reads 89.1 % accuracy from the pretrained LSTM language model.")
    assert "'X means'" in notes[1] and notes[1].endswith("100.0 %.")
