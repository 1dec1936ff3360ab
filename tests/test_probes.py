from transformers import AutoConfig, AutoModelForMaskedLM

from tunekit.probes import linear_probe, masked_word_probe
from tunekit.synthetic import build_synthetic_corpus
from tunekit.tokenization import train_wordpiece


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
    model = AutoModelForMaskedLM.from_config(config)
    masked = masked_word_probe(model, tokenizer, seed=0)
    assert 0.0 <= masked <= 1.0
    train, test = corpus["train"], corpus["test"]
    linear = linear_probe(model, tokenizer, train["text"], train["label"], test["text"], test["label"])
    assert 0.0 <= linear <= 1.0
    # Features that carry the label must be read by the probe: train and test on the same texts.
    memorised = linear_probe(model, tokenizer, train["text"], train["label"], train["text"], train["label"])
    assert memorised >= 0.9
