"""How a run uses its hardware: precision, matmul modes, the optimizer implementation, compilation.

Every branch that only a GPU takes has a CPU fallback, and tests pin the fallback (tests/test_optim.py);
the CUDA branches themselves are exercised on a GPU machine.
"""

import logging
import os

import torch

from tunekit.config import TrainArguments

logger = logging.getLogger(__name__)

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


def build_optimizer(model: torch.nn.Module, args: TrainArguments) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases, norms and other 1-d parameters (as in BERT).

    Fused (one kernel for all parameters, the Trainer's default on CUDA) when every parameter is on
    CUDA; otherwise torch's own default for the device (the same AdamW the Trainer's `adamw_torch`
    runs, so the benchmark compares loops, not optimizer kernels)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(param.is_cuda for param in decay + no_decay)
    return torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        fused=fused or None,
    )


def maybe_compile(model: torch.nn.Module, args: TrainArguments) -> torch.nn.Module:
    """`torch.compile` the model when the recipe asks for it.

    Packed pretraining feeds blocks of one shape, so it compiles once (the masked-only MLM head adds
    one dynamic dimension, the number of masked tokens, which dynamo marks dynamic after its first
    recompile). Fine-tuning batches are padded to the longest example in each batch, so with the
    default `dynamic=None` dynamo recompiles on the second new length and then compiles a
    shape-generic graph; padding to a multiple of 8 (as the fine-tuning collator does under mixed
    precision) bounds the number of distinct lengths. Saved weights carry no `_orig_mod.` prefix:
    everything that saves or reads the state unwraps with `keep_torch_compile=False`.
    """
    if not args.torch_compile:
        return model
    logger.info("compiling the model with torch.compile")
    return torch.compile(model)
