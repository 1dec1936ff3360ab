import pytest
import torch

from tunekit.training.flops import PEAK_TFLOPS_16BIT, peak_flops, training_flops_per_token, utilisation


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
    assert result.mfu == pytest.approx(4e14 / (989.5e12))
