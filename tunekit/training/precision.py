"""Where a run decides its precision: mixed precision (`auto`), TF32 for the fp32 matmuls on CUDA, and
whether subnormal floats are flushed to zero on CPU.

Every branch that only a GPU takes has a CPU fallback, and tests pin the fallback
(tests/tunekit/training/test_precision.py); the CUDA branches themselves are exercised on a GPU machine.
"""

import os

import torch

# bf16 autocast on CPU does not pay here. Measured on this project's 2-core AMD EPYC (it reports
# amx_bf16/avx512_bf16), one training step of a 4-layer x 256 BERT MLM (vocab 8192, batch 4 x 256),
# fp32 and bf16 alternating in one process on a heavily shared machine: fp32 21-23 s, bf16 88 s
# after warm-up, i.e. bf16 ran at about 0.25x fp32. So `auto` keeps fp32 on CPU.
CPU_BF16_PAYS = False


def resolve_mixed_precision(requested: str | None, use_cpu: bool) -> str | None:
    """`auto`: bf16 on a CUDA device that supports it, otherwise fp32 (`no`).

    `accelerate launch --mixed_precision X` still wins over `auto` (it sets ACCELERATE_MIXED_PRECISION);
    None leaves the choice to accelerate, as before.
    """
    if requested != "auto":
        return requested
    if os.environ.get("ACCELERATE_MIXED_PRECISION"):
        return os.environ["ACCELERATE_MIXED_PRECISION"]
    if not use_cpu and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if CPU_BF16_PAYS else "no"


def configure_matmul(device: torch.device) -> None:
    """TF32 tensor cores for the fp32 matmuls left under autocast (and for fp32 runs) on CUDA.

    On CPU the flag would do nothing useful, so it is left as the user set it."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def configure_denormals(device: torch.device, flush: bool) -> None:
    """On CPU, set for this run whether subnormal floats are flushed to zero (`flush_denormal`).

    Why: x86 cores take a slow microcode path on every subnormal operand. The encoder pretrained by
    `objective: dbow` on IMDb produces them in training: fine-tuning it ran at 7.0k tokens/s, and
    13.2k with flushing, the MLM encoder's speed (13.3k with or without); continuing its pretraining,
    13.1k against 17.4k (2-core AVX-512 Xeon, 60 and 300 steps, docs/results/imdb_cpu/README.md).
    Set on every CPU run, either way, because the flag is global to the process and a study runs
    its cells in one process. Off by default: flushing changes results in the last bits, so the
    committed results reproduce bit for bit only without it. Left alone on CUDA, which does not
    read it. Known gap: those speed-ups were measured with the flag set before the process's first
    torch operation; x86 keeps it per thread (MXCSR), and a study run setting it later was not
    faster, so intra-op worker threads that already exist may not see it."""
    if device.type == "cpu":
        torch.set_flush_denormal(flush)
