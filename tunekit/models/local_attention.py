"""Sliding-window attention without a (batch, 1, T, T) mask, for ModernBERT's local layers.

ModernBERT's local layers let a query at i read the keys j with |i - j| <= w (w = local_attention
// 2 = 64 in the recipes). transformers builds that as a dense boolean (B, 1, T, T) mask for every
batch, padded or not, and SDPA then computes all T x T scores and masks most away: at T = 512
three quarters of them. On CUDA a masked SDPA also cannot use the flash kernel.

For a batch without padding (packed pretraining blocks), tunekit's mask builder leaves the sliding
mask out (`attention_masks`), and the attention runs here instead, by chunks: the queries are cut
into chunks of c, and each chunk attends, through one batched SDPA call, to the c + 2w keys that
can reach it. The only mask is one (chunks, c, c + 2w) band, the same for every batch and head; the
scores computed are c + 2w per query instead of T (192 instead of 512 at T = 512, w = c = 64). The
result is the dense masked attention's, to rounding (`tests/tunekit/models/test_local_attention.py`).

(FlexAttention would skip the masked blocks inside one kernel, but only compiled; this is plain
SDPA, so it runs the same eager, compiled, on a CPU and on a GPU.)
"""

import torch
from torch.nn.functional import pad, scaled_dot_product_attention


def band_mask(length: int, half_window: int, chunk: int, device: torch.device) -> torch.Tensor:
    """(chunks, chunk, chunk + 2w): which of its keys each query of each chunk may read.

    Query a of chunk i sits at i*chunk + a; key b of its window at i*chunk - w + b. Keys outside the
    sequence are padding and never read; queries past its end (padding too, dropped afterwards) read
    their whole window, so that no row is empty (an empty row would make NaN)."""
    chunks = -(-length // chunk)
    query = (
        torch.arange(chunks, device=device)[:, None, None] * chunk
        + torch.arange(chunk, device=device)[:, None]
    )
    key = (
        query
        - torch.arange(chunk, device=device)[:, None]
        - half_window
        + torch.arange(chunk + 2 * half_window, device=device)
    )
    within = (key - query).abs() <= half_window
    real_key = (key >= 0) & (key < length)
    return (within & real_key) | (query >= length)


def windowed_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    half_window: int,
    scale: float | None = None,
    dropout: float = 0.0,
    chunk: int | None = None,
) -> torch.Tensor:
    """Attention of (batch, heads, T, head_dim) tensors where query i reads keys |i - j| <= w only."""
    batch, heads, length, dim = query.shape
    if half_window >= length - 1:  # every query reads every key: no window to apply
        return scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scale)
    chunk = min(length, chunk or max(16, half_window))
    chunks = -(-length // chunk)
    tail = chunks * chunk - length
    span = chunk + 2 * half_window
    # reshape, not view: ModernBERT's query is a transposed view of its fused qkv, and where T is a
    # multiple of the chunk the zero-length pad hands it back as it is, not contiguous.
    queries = pad(query, (0, 0, 0, tail)).reshape(batch, heads * chunks, chunk, dim)

    def windows(x: torch.Tensor) -> torch.Tensor:
        padded = pad(x, (0, 0, half_window, half_window + tail))  # (B, H, w + T + tail + w, D)
        # (B, H, chunks, D, span) -> (B, H * chunks, span, D): chunk i's keys start at i * chunk.
        return padded.unfold(2, span, chunk).transpose(-1, -2).reshape(batch, heads * chunks, span, dim)

    mask = band_mask(length, half_window, chunk, query.device).repeat(heads, 1, 1)
    output = scaled_dot_product_attention(
        queries, windows(key), windows(value), attn_mask=mask, dropout_p=dropout, scale=scale
    )
    return output.reshape(batch, heads, chunks * chunk, dim)[:, :, :length]


def rows_band_mask(rows: torch.Tensor, length: int, half_window: int) -> torch.Tensor:
    """(batch, 1, queries, T): the window of each query row of the rows-only last layer."""
    keys = torch.arange(length, device=rows.device)
    return (rows[:, None, :, None] - keys).abs() <= half_window
