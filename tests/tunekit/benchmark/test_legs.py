import pytest
from transformers import AutoConfig

from tunekit.benchmark.legs import describe_optimizer, flops_per_token
from tunekit.benchmark.presets import SMALL_BERT, Case
from tunekit.training.flops import training_flops_per_token


def small_bert_config(**extra):
    return AutoConfig.for_model(
        "bert",
        vocab_size=8192,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=512,
        **extra,
    )


def test_pretraining_flops_count_the_body_and_the_head_on_the_masked_share():
    case = Case("pretraining", SMALL_BERT, 128, 32, "no", False, 5, 30)
    # BertForMaskedLM's BertModel has no pooler.
    d, layers, ffn = 256, 4, 1024
    per_layer = 4 * (d * d + d) + 2 * d + (d * ffn + ffn) + (ffn * d + d) + 2 * d
    head = (d * d + d) + 2 * d + 8192 + 8192 * d  # transform, its LayerNorm, decoder bias, tied decoder
    # The last layer but its key and value projections runs at the masked 15 % only.
    last_layer = per_layer - 2 * (d * d + d)
    expected = training_flops_per_token(
        layers * per_layer, layers, d, 128, head, 0.15, last_layer_params=last_layer, last_layer_fraction=0.15
    )
    assert flops_per_token(small_bert_config(), case, 128) == pytest.approx(expected)


def test_fine_tuning_flops_use_the_mean_length_for_attention():
    case = Case("finetuning", SMALL_BERT, 512, 8, "no", False, 16, 16)
    config = small_bert_config(num_labels=2)
    short, long = flops_per_token(config, case, 100.0), flops_per_token(config, case, 300.0)
    # Three layers attend at every position; the last one at position 0 only (1 of T tokens), so
    # its weights but K and V count on 1/T of the tokens.
    d, ffn = 256, 1024
    last_layer = 2 * (d * d + d) + 2 * d + (d * ffn + ffn) + (ffn * d + d) + 2 * d
    assert long - short == pytest.approx(12 * 3 * d * 200 - 6 * last_layer * (1 / 100 - 1 / 300))


def test_modernbert_flops_are_computed_too():
    config = AutoConfig.for_model(
        "modernbert",
        vocab_size=512,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
    )
    case = Case("pretraining", SMALL_BERT, 64, 8, "no", False, 1, 1)
    assert flops_per_token(config, case, 64) > 6 * 2 * 64 * 128


def test_optimizer_description_names_the_implementation():
    assert describe_optimizer({"name": "AdamW", "fused": True}) == "AdamW (fused)"
    assert describe_optimizer({"name": "AdamW", "fused": False, "foreach": None}) == "AdamW (torch default)"
    assert describe_optimizer({}) == "unknown"
