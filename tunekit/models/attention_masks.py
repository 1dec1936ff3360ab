"""transformers' SDPA attention, minus one question to the device per padded batch.

Before every attention, transformers' SDPA mask builders decide whether the mask can be dropped
(so the flash kernel may run) with `padding_mask.all()` (`masking_utils._ignore_*_mask_sdpa`): a
host read of a device value, so on CUDA the host waits there for the work queued before it, on
every forward of a padded batch (twice for ModernBERT: its global and its sliding-window masks).

In tunekit's loop the answer is known before the question. Its collators leave the mask out of
every batch without padding (`collators.PaddingCollator`, packed blocks), so a batch that
carries a mask has padding, and the mask is needed. `install_known_padding_masks` therefore
switches a model from "sdpa" to "tunekit_sdpa": the same attention function
(`sdpa_attention_forward`) and the same mask builder (`sdpa_mask`), registered through
transformers' `AttentionInterface` / `AttentionMaskInterface`, except that a mask that is given
is always built, never tested. Batches without a mask still skip it, as before, with no read.
(One more exception, on a CPU only: attention dropout draws its mask four lanes to a random word,
`tunekit.models.cpu_dropout`.)

On CUDA, a masked attention runs without cuDNN's kernel (`masked_attention_backends`): its
backward returns NaN query gradients for masks whose padded length is 64 mod 128 when some query row
attends to nothing (pytorch/pytorch#196678; torch 2.11 on Hopper, where cuDNN is the default). A
ModernBERT padding query beyond its sliding window is such a row; on the H200 every IMDb fine-tuning
cell stopped one step after its first batch padded to 192, 320 or 448. Unmasked batches (packed
pretraining) keep cuDNN.

Results are unchanged: an all-ones mask, which only a caller outside the loop could pass, is
built and applied instead of dropped, which masks nothing. The name is not saved (transformers
drops `_attn_implementation` from config.json), so saved models load as plain "sdpa" models.
"""

from contextlib import nullcontext
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from tunekit.models.cpu_dropout import attention_with_cpu_dropout

KNOWN_PADDING_SDPA = "tunekit_sdpa"


def _sdpa_mask_without_asking(*args: Any, **kwargs: Any) -> Any:
    """`sdpa_mask`, except that a given padding mask is built rather than tested for all-ones."""
    if kwargs.get("attention_mask") is not None:
        kwargs["allow_is_causal_skip"] = False
        kwargs["allow_is_bidirectional_skip"] = False
    return sdpa_mask(*args, **kwargs)


# The kernels that take a mask, less cuDNN: memory-efficient, with math as the fallback (flash
# takes no mask, so naming it would change nothing).
WITHOUT_CUDNN = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def masked_attention_backends(
    query: torch.Tensor, attention_mask: torch.Tensor | None
) -> list[SDPBackend] | None:
    """The SDPA kernels this attention may use; None: torch's own choice."""
    return WITHOUT_CUDNN if attention_mask is not None and query.device.type == "cuda" else None


def _attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *args: Any,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    backends = masked_attention_backends(query, attention_mask)
    with nullcontext() if backends is None else sdpa_kernel(backends):
        return attention_with_cpu_dropout(module, query, key, value, attention_mask, *args, **kwargs)


AttentionInterface.register(KNOWN_PADDING_SDPA, _attention)
AttentionMaskInterface.register(KNOWN_PADDING_SDPA, _sdpa_mask_without_asking)


def _no_padding_to_warn_about(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
    """In tunekit's loop a batch without a mask has no padding, so there is nothing to look for."""


def skip_pad_token_search(model: torch.nn.Module) -> None:
    """On this instance only: GPT-2's forward looks for pad tokens in every batch given no mask
    (`warn_if_padding_and_no_attention_mask`, a host read of the batch), which tunekit's collators
    make pointless, as they make the mask's all-ones test pointless; the search is skipped."""
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            module.warn_if_padding_and_no_attention_mask = _no_padding_to_warn_about


def install_known_padding_masks(model: torch.nn.Module) -> bool:
    """Switch the transformers model inside `model` (plain, or under a LoRA wrapper) from "sdpa" to
    "tunekit_sdpa"; returns whether it did. Other attention implementations and the LSTM are left
    as they are."""
    transformer = next((module for module in model.modules() if isinstance(module, PreTrainedModel)), None)
    if transformer is None or transformer.config._attn_implementation != "sdpa":
        return False
    transformer.set_attn_implementation(KNOWN_PADDING_SDPA)
    return transformer.config._attn_implementation == KNOWN_PADDING_SDPA
