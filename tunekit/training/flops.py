"""Training FLOPs per token and model FLOPs utilisation (MFU).

FLOPs per trained token follow PaLM (Chowdhery et al. 2022, appendix B):

    6 * N  +  12 * L * d * T

- 6N: a multiply-add is 2 FLOPs, and the backward pass costs twice the forward, for every weight a
  token meets. N excludes the input embedding table (a lookup, not a matmul). An MLM head that runs
  only on the masked positions counts with the fraction of tokens it runs on: `head_fraction`.
  Likewise the last layer, when it runs only where its output is read (`tunekit.models.last_layer`): its
  weights but the key and value projections count on `last_layer_fraction` of the tokens.
- 12LdT: attention scores and their weighted sum (2 matmuls of T x d per token and layer, x 3 for
  forward + backward, x 2 FLOPs per multiply-add). Encoders attend to the full sequence, so no
  causal halving, as in PaLM.

MFU is achieved model FLOP/s over the device's dense peak at the training precision. It uses model
FLOPs, not hardware FLOPs: recomputation and padding count as waste, which is the point.
"""

from dataclasses import dataclass

import torch

# Dense (no 2:4 sparsity) tensor-core peak TFLOP/s for bf16/fp16 with fp32 accumulation, from the
# vendors' data sheets. Matched against `torch.cuda.get_device_name()`; longer keys first so that
# "H100 PCIe" wins over "H100".
PEAK_TFLOPS_16BIT: dict[str, float] = {
    "H200": 989.5,
    "GH200": 989.5,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.5,
    "H100": 989.5,  # SXM
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.1,
    "L40": 181.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
    "RTX 3090": 71.0,
    "V100": 125.0,  # fp16 only
    "T4": 65.0,  # fp16 only
}


def training_flops_per_token(
    non_embedding_params: int,
    num_layers: int,
    hidden_size: int,
    seq_len: int,
    head_params: int = 0,
    head_fraction: float = 1.0,
    attention: bool = True,
    last_layer_params: int = 0,
    last_layer_fraction: float = 1.0,
) -> float:
    """Model FLOPs to train on one token (forward + backward), PaLM appendix B.

    `non_embedding_params` is the body; `head_params` the output head (for a tied MLM decoder, the
    vocabulary x hidden matrix it multiplies by), counted on `head_fraction` of the tokens.
    `last_layer_params` (part of the body) and the last layer's attention count on
    `last_layer_fraction` of the tokens. `attention=False` drops the 12LdT term (an LSTM has none).
    """
    body = non_embedding_params - last_layer_params * (1 - last_layer_fraction)
    dense = 6 * (body + head_params * head_fraction)
    attending_layers = num_layers - (1 - last_layer_fraction) if last_layer_params else num_layers
    return dense + (12 * attending_layers * hidden_size * seq_len if attention else 0)


def peak_flops(device: torch.device | str) -> tuple[float | None, str]:
    """Dense 16-bit peak FLOP/s of one device, or None and the reason there is none."""
    device = torch.device(device)
    if device.type != "cuda":
        return None, f"no peak FLOP/s for a {device.type} device: MFU is reported on known GPUs only"
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_TFLOPS_16BIT, key=len, reverse=True):
        if key in name:
            return PEAK_TFLOPS_16BIT[key] * 1e12, name
    return None, f"{name!r} is not in tunekit.training.flops.PEAK_TFLOPS_16BIT: MFU not reported"


@dataclass
class Utilisation:
    tokens_per_second: float
    achieved_flops: float  # per device
    mfu: float | None
    note: str  # the device name, or why MFU is missing


def utilisation(
    flops_per_token: float, tokens_per_second: float, device: torch.device | str, num_devices: int = 1
) -> Utilisation:
    """MFU of a run that trains `tokens_per_second` in total over `num_devices` equal devices."""
    per_device = flops_per_token * tokens_per_second / max(1, num_devices)
    peak, note = peak_flops(device)
    return Utilisation(tokens_per_second, per_device, None if peak is None else per_device / peak, note)
