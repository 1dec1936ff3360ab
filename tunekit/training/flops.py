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
  causal halving, as in PaLM. A sliding-window layer (ModernBERT's local layers: a query at i reads
  the keys j with |i - j| <= w, w = local_attention // 2) counts the keys it reads, not T: that
  is 12 d T_l with T_l = (2m + 1) - m (m + 1) / T, m = min(w, T - 1), the mean over the queries
  of a block of T (the edge queries read fewer). So the term is 12 d sum_l T_l.

MFU is achieved model FLOP/s over the device's dense peak at the training precision. It uses model
FLOPs, not hardware FLOPs: recomputation and padding count as waste, which is the point.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

# Dense (no 2:4 sparsity) tensor-core peak TFLOP/s for bf16/fp16 with fp32 accumulation, from the
# vendors' data sheets (NVIDIA's lists the sparse figure, twice these). Matched case-insensitively
# against `torch.cuda.get_device_name()`, longer keys first, so that "H100 PCIe" wins over "H100".
# Names torch reports: "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe", "NVIDIA H100 NVL",
# "NVIDIA H200", "NVIDIA H200 NVL", "NVIDIA H800" / "NVIDIA H800 80GB HBM3" (SXM), "NVIDIA H800 PCIe",
# "NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe", "NVIDIA GH200 480GB".
PEAK_TFLOPS_16BIT: dict[str, float] = {
    "H100": 989.4,  # SXM5 (Hopper whitepaper: 989.4 dense, 1978.9 sparse)
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,  # per GPU (data sheet: 1 671 sparse per GPU)
    "H200": 989.4,  # SXM, the H100 SXM's tensor cores
    "H200 NVL": 835.0,
    "GH200": 989.4,
    "H800": 989.4,  # SXM
    "H800 PCIe": 756.0,
    "A100": 312.0,  # SXM4 and PCIe alike
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


def attended_keys_per_query(seq_len: float, half_window: int | None = None) -> float:
    """Mean keys a query reads in a block of `seq_len`: all of them, or within +-`half_window`."""
    if half_window is None or half_window >= seq_len - 1:
        return float(seq_len)
    reach = max(0, half_window)
    return (2 * reach + 1) - reach * (reach + 1) / seq_len


def sliding_half_window(config: Any, layer: int) -> int | None:
    """The +-w a layer's queries read, or None for a global layer.

    ModernBERT's configs name each layer "sliding_attention" or "full_attention" (`layer_types`,
    derived from `global_attn_every_n_layers` on older configs) and give the whole window as
    `local_attention` (the mask keeps |i - j| <= local_attention // 2)."""
    window = getattr(config, "local_attention", None)
    if not window:
        return None
    kinds = getattr(config, "layer_types", None)
    if kinds is not None:
        local = kinds[layer] == "sliding_attention"
    else:
        local = bool(layer % getattr(config, "global_attn_every_n_layers", 1))
    return window // 2 if local else None


def attention_lengths(config: Any, num_layers: int, seq_len: float) -> list[float]:
    """Keys read per query, layer by layer (see `sliding_half_window`)."""
    return [attended_keys_per_query(seq_len, sliding_half_window(config, i)) for i in range(num_layers)]


def describe_attention(lengths: Sequence[float], seq_len: float) -> str:
    """One line naming how each layer's attention was counted, for the tables that report MFU."""
    full = sum(1 for length in lengths if length == seq_len)
    text = f"{full} layer(s) at T={seq_len:g}"
    windowed = sorted({length for length in lengths if length != seq_len})
    for length in windowed:
        count = sum(1 for value in lengths if value == length)
        text += f", {count} sliding-window layer(s) at {length:.1f} keys/query"
    return text


FORMULA = (
    "FLOPs/token = 6 (N_body + f_head N_head) + 12 d sum_l T_l (PaLM app. B); N excludes embedding "
    "lookups; the MLM head counts on its share f_head of the tokens, the last layer but K/V on the "
    "share it runs at; T_l = T for a global layer, the mean keys per query (2m+1) - m(m+1)/T, "
    "m = min(w, T-1), for a sliding-window layer of +-w"
)


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
    attention_spans: Sequence[float] | None = None,
) -> float:
    """Model FLOPs to train on one token (forward + backward), PaLM appendix B.

    `non_embedding_params` is the body; `head_params` the output head (for a tied MLM decoder, the
    vocabulary x hidden matrix it multiplies by), counted on `head_fraction` of the tokens.
    `last_layer_params` (part of the body) and the last layer's attention count on
    `last_layer_fraction` of the tokens. `attention=False` drops the 12LdT term (an LSTM has none).
    `attention_spans` are the keys each layer's queries read (`attention_lengths`); every layer
    reads all `seq_len` when it is None.
    """
    body = non_embedding_params - last_layer_params * (1 - last_layer_fraction)
    dense = 6 * (body + head_params * head_fraction)
    if not attention:
        return dense
    spans = [float(seq_len)] * num_layers if attention_spans is None else list(attention_spans)
    if len(spans) != num_layers:
        raise ValueError(f"attention_spans has {len(spans)} entries for {num_layers} layers")
    if last_layer_params and spans:
        spans[-1] *= last_layer_fraction
    return dense + 12 * hidden_size * sum(spans)


def peak_flops(device: torch.device | str) -> tuple[float | None, str]:
    """Dense 16-bit peak FLOP/s of one device, or None and the reason there is none."""
    device = torch.device(device)
    if device.type != "cuda":
        return None, f"no peak FLOP/s for a {device.type} device: MFU is reported on known GPUs only"
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_TFLOPS_16BIT, key=len, reverse=True):
        if key.lower() in name.lower():
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
