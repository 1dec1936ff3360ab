"""Dropout on the CPU at a quarter of the random draws.

On a CPU, dropout is mostly the cost of its random numbers. torch draws one per element
(`bernoulli_`, through MKL, which on this project's AMD CPU takes 12 ns an element: 61 ms for one
attention layer's 5M probabilities, B 8 x H 4 x T 400). Attention dropout also keeps SDPA off its
fused CPU kernel, so in the CPU benchmark's 4-layer BERT the draws were 16 % of a fine-tuning step.
Here each 64-bit draw of torch's CPU generator gives four 16-bit lanes, and an element is kept
where its lane clears `p` (p rounded to 1/65536): 4-6x less time for the same Bernoulli(1 - p) keep
mask, scaled by 1 / (1 - p) as torch does. The generator is torch's default one, so a seed, a
checkpoint's RNG state and a resume cover it as they cover torch's dropout.

Training on a CPU only: on CUDA torch's dropout is a fused kernel and SDPA's fused kernels drop
in place, and under `torch.compile` inductor draws its own numbers; both keep torch's dropout.
"""

import math

import torch
from torch import nn
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

LANES = 65536  # a 16-bit lane's values


def keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> torch.Tensor:
    """A boolean CPU tensor, each element True with probability 1 - p (p rounded to 1/65536)."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    lanes = words.view(torch.int16)[:count].view(shape)
    return lanes >= round(p * LANES) - LANES // 2


def _applies(tensor: torch.Tensor, p: float) -> bool:
    return p > 0 and tensor.device.type == "cpu" and not torch.compiler.is_compiling()


def cpu_dropout(values: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of `values` with the cheap keep mask."""
    # scaled in place: the product is a new tensor that autograd does not keep, so no second copy
    return (values * keep_mask(values.shape, p)).mul_(1.0 / (1.0 - p))


class CPUDropout(nn.Dropout):
    """nn.Dropout that draws its mask with `keep_mask` when training on a CPU (no new state)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and _applies(input, self.p) and not self.inplace:
            return cpu_dropout(input, self.p)
        return super().forward(input)


def attention_with_cpu_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except that training on a CPU with attention dropout (which
    keeps SDPA on its math path anyway) drops the probabilities with `keep_mask`. transformers
    passes `dropout` only in training mode."""
    same_length = query.shape[2] == key.shape[2]  # training: no cache, no cross-attention
    plain = kwargs.get("position_bias") is None and kwargs.get("softcap") is None
    if not (_applies(query, dropout) and same_length and plain):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    # Grouped-query attention: each key/value head serves `groups` query heads.
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scores = torch.matmul(query, key.transpose(-1, -2)) * (scaling or query.shape[-1] ** -0.5)
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if attention_mask is None and is_causal:  # as SDPA's is_causal, for a mask-less batch
        attention_mask = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool).tril()
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        # the dtype's minimum, not -inf: a padded query whose every key is masked gets finite
        # (unused) weights instead of NaN, which would reach real rows through its values
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(cpu_dropout(weights, dropout), value)
    return output.transpose(1, 2).contiguous(), None


def install_cpu_dropout(model: nn.Module) -> int:
    """Make every nn.Dropout of `model` a CPUDropout; returns how many. (Attention dropout goes
    through `attention_with_cpu_dropout`, tunekit's SDPA attention function.)"""
    swapped = 0
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = CPUDropout
            swapped += 1
    return swapped
