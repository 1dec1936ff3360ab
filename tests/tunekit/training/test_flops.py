import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM, BertConfig

from tunekit.benchmark.table import Row, flops_notes
from tunekit.training.flops import (
    PEAK_TFLOPS_16BIT,
    attended_keys_per_query,
    attention_lengths,
    describe_attention,
    peak_flops,
    training_flops_per_token,
    utilisation,
)
from tunekit.training.throughput import flops_per_token as throughput_flops


def test_palm_formula_counts_head_on_its_tokens_only():
    dense = training_flops_per_token(1_000, num_layers=2, hidden_size=8, seq_len=16)
    assert dense == 6 * 1_000 + 12 * 2 * 8 * 16
    sparse = training_flops_per_token(
        1_000, num_layers=2, hidden_size=8, seq_len=16, head_params=500, head_fraction=0.2
    )
    assert sparse == dense + 6 * 500 * 0.2
    assert training_flops_per_token(1_000, 2, 8, 16, attention=False) == 6_000


def test_cpu_has_no_mfu_and_says_why():
    peak, note = peak_flops("cpu")
    assert peak is None and "cpu" in note
    result = utilisation(1e9, 2_000.0, torch.device("cpu"), num_devices=2)
    assert result.mfu is None and result.achieved_flops == pytest.approx(1e12)


def test_gpu_names_match_the_most_specific_entry(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    peak, name = peak_flops("cuda:0")
    assert peak == PEAK_TFLOPS_16BIT["H100 PCIe"] * 1e12 and "PCIe" in name
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert peak_flops("cuda:0")[0] == PEAK_TFLOPS_16BIT["H100"] * 1e12
    result = utilisation(1e9, 400_000.0, "cuda:0")
    assert result.mfu == pytest.approx(4e14 / 989.4e12)


def test_sliding_window_layers_count_the_keys_they_read():
    # +-2 keys in a block of 6: the queries read 3, 4, 5, 5, 4, 3 keys.
    assert attended_keys_per_query(6, 2) == pytest.approx(24 / 6)
    assert attended_keys_per_query(6, None) == attended_keys_per_query(6, 5) == 6.0
    assert attended_keys_per_query(512, 64) == pytest.approx(129 - 64 * 65 / 512)
    spans = [512.0, attended_keys_per_query(512, 64)]
    dense = training_flops_per_token(1_000, num_layers=2, hidden_size=8, seq_len=512)
    windowed = training_flops_per_token(1_000, 2, 8, 512, attention_spans=spans)
    assert dense - windowed == pytest.approx(12 * 8 * (512 - spans[1]))
    # The last layer's attention runs on its share of the tokens, windowed or not.
    pruned = training_flops_per_token(
        1_000, 2, 8, 512, last_layer_params=100, last_layer_fraction=0.15, attention_spans=spans
    )
    assert windowed - pruned == pytest.approx(6 * 100 * 0.85 + 12 * 8 * spans[1] * 0.85)
    with pytest.raises(ValueError, match="3 entries for 2 layers"):
        training_flops_per_token(1_000, 2, 8, 512, attention_spans=[1.0, 2.0, 3.0])


def modernbert_config(layers: int, **extra) -> AutoConfig:
    return AutoConfig.for_model(
        "modernbert",
        vocab_size=512,
        hidden_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        **extra,
    )


def test_modernbert_local_layers_are_counted_by_their_window():
    config = modernbert_config(6, local_attention=128)  # every third layer global, from the first
    lengths = attention_lengths(config, 6, 512)
    local = attended_keys_per_query(512, 64)
    assert lengths == [512.0, local, local, 512.0, local, local]
    assert describe_attention(lengths, 512) == (
        f"2 layer(s) at T=512, 4 sliding-window layer(s) at {local:.1f} keys/query"
    )
    # A block no longer than the window reads every key: nothing changes.
    assert attention_lengths(config, 6, 64) == [64.0] * 6
    assert attention_lengths(BertConfig(num_hidden_layers=3), 3, 512) == [512.0] * 3
    older = modernbert_config(4, local_attention=32, global_attn_every_n_layers=2)
    assert attention_lengths(older, 4, 100) == [100.0, 33 - 16 * 17 / 100, 100.0, 33 - 16 * 17 / 100]


def test_modernbert_mfu_no_longer_charges_local_layers_full_attention():
    model = AutoModelForMaskedLM.from_config(modernbert_config(3, local_attention=16))
    honest = throughput_flops(model, 256, head_fraction=0.15)
    body, head = _body_and_head(model)
    every_layer_full = training_flops_per_token(body, 3, 64, 256, head_params=head, head_fraction=0.15)
    assert every_layer_full - honest == pytest.approx(12 * 64 * 2 * (256 - attended_keys_per_query(256, 8)))


def _body_and_head(model) -> tuple[int, int]:
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    body_ids = {id(p) for p in model.base_model.parameters()}
    body = sum(p.numel() for p in model.base_model.parameters() if id(p) not in embeddings)
    head = sum(p.numel() for p in model.parameters() if id(p) not in body_ids)
    return body, head + model.get_output_embeddings().weight.numel()


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.4),
        ("NVIDIA H200 NVL", 835.0),
        ("NVIDIA H800", 989.4),
        ("NVIDIA H800 80GB HBM3", 989.4),
        ("NVIDIA H800 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A100-PCIE-40GB", 312.0),
        ("NVIDIA GH200 480GB", 989.4),
    ],
)
def test_peak_table_knows_the_hopper_and_ampere_data_centre_parts(monkeypatch, name, tflops):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    peak, reported = peak_flops("cuda:0")
    assert peak == pytest.approx(tflops * 1e12) and reported == name


def test_benchmark_notes_print_the_formula_and_what_each_case_counted():
    row = dict(
        task="pretraining", model="bert-base", system="tunekit", precision="bf16", compile=False,
        seq_len=512, batch_size=32, steps=3, seconds=1.0, examples_per_second=1.0,
        tokens_per_second=1.0, mfu=0.1, peak_memory_mib=1.0, optimizer="AdamW",
    )  # fmt: skip
    rows = [
        Row(**row, flops_per_token=6.2e8, attention_counted="4 layer(s) at T=512, 8 sliding-window"),
        Row(**(row | {"system": "Trainer"}), flops_per_token=6.2e8),
    ]
    notes = flops_notes(rows)
    assert notes[0].startswith("FLOPs/token = 6 (N_body") and "12 d sum_l T_l" in notes[0]
    assert notes[1:] == [
        "FLOPs, pretraining bert-base T=512: 620 MFLOP/token: 4 layer(s) at T=512, 8 sliding-window."
    ]
    assert flops_notes([Row(**row)]) == []
