import json

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from tunekit.config import parse_recipe
from tunekit.training.flops import training_flops_per_token
from tunekit.training.tasks import run_pretraining
from tunekit.training.throughput import ThroughputMeter, flops_per_token, peak_memory

CONFIG = dict(
    vocab_size=128, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
)


def test_flops_count_the_mlm_head_on_the_masked_share_only():
    model = BertForMaskedLM(BertConfig(**CONFIG))
    embeddings = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    body = sum(p.numel() for p in model.bert.parameters()) - embeddings
    head = sum(p.numel() for p in model.cls.parameters())  # includes the decoder tied to the embeddings
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert flops_per_token(model, 64, head_fraction=0.15) == training_flops_per_token(
        body, 2, 16, 64, head_params=head, head_fraction=0.15
    )
    dense, sparse = flops_per_token(model, 64), flops_per_token(model, 64, head_fraction=0.15)
    assert dense - sparse == pytest.approx(6 * 0.85 * head)
    classifier = BertForSequenceClassification(BertConfig(**CONFIG))
    assert flops_per_token(classifier, 64, head_fraction=0.15) == flops_per_token(classifier, 64)


def test_cpu_reports_tokens_and_memory_but_no_mfu():
    model = BertForSequenceClassification(BertConfig(**CONFIG))
    meter = ThroughputMeter(torch.device("cpu"), num_processes=1, masked_only_head=False)
    meter.count(tokens=1000, examples=10, positions=1280, targets=10)
    meter.run_seconds = meter.window_seconds = 2.0
    window = meter.report(model, window=True, fine_tuning=True)
    assert window["tokens_per_second"] == 500 and window["examples_per_second"] == 5
    assert window["mfu"] is None and window["peak_memory_bytes"] > 0
    assert meter.window_tokens == 0  # the window restarts; the run keeps counting
    run = meter.report(model, window=False, fine_tuning=True)
    assert run["tokens_per_second"] == 500 and "cpu" in run["mfu_note"]
    assert run["flops_per_token"] == flops_per_token(model, 128)
    assert peak_memory(torch.device("cpu"))[1] == "peak RSS of the process"


def test_every_run_reports_speed_to_metrics_and_results(pretrain_argv, tmp_path):
    results = run_pretraining(*parse_recipe([*pretrain_argv, "--max_steps", "4", "--logging_steps", "2"]))
    logged = [json.loads(line) for line in (tmp_path / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    steps = [record for record in logged if "loss" in record]
    assert [r["step"] for r in steps] == [2, 4]
    assert all(r["tokens_per_second"] > 0 and r["mfu"] is None and r["peak_memory_bytes"] > 0 for r in steps)
    assert results["tokens_per_second"] > 0 and results["mfu"] is None and "cpu" in results["mfu_note"]
    assert results["train_flops"] == results["flops_per_token"] * results["tokens_seen"] > 0
    assert results["peak_memory_bytes"] > 0 and results["mixed_precision"] == "no"


def test_flops_count_the_last_layer_where_it_runs():
    model = BertForMaskedLM(BertConfig(**CONFIG))
    layer = model.bert.encoder.layer[-1]
    key_value = sum(
        p.numel() for m in (layer.attention.self.key, layer.attention.self.value) for p in m.parameters()
    )
    query_only = sum(p.numel() for p in layer.parameters()) - key_value
    full = flops_per_token(model, 64, head_fraction=0.15)
    pruned = flops_per_token(model, 64, head_fraction=0.15, last_layer_fraction=0.15)
    # 6 x its weights but K and V, and its share of 12LdT, run on 15 % of the tokens only.
    assert full - pruned == pytest.approx(0.85 * (6 * query_only + 12 * 16 * 64))
    meter = ThroughputMeter(torch.device("cpu"), 1, masked_only_head=False, last_layer_rows="first_token")
    meter.count(tokens=1280, examples=10, positions=1280, targets=10)
    meter.run_seconds = 1.0
    classifier = BertForSequenceClassification(BertConfig(**CONFIG))
    report = meter.report(classifier, window=False, fine_tuning=True)
    assert report["flops_per_token"] == flops_per_token(classifier, 128, last_layer_fraction=10 / 1280)
