"""FSDP2 through accelerate: which modules get their own shard group.

accelerate (1.15) wraps every module class the model lists in `_no_split_modules`, then shards the
input embedding as a unit of its own. When one of those classes holds the input embedding
(ModernBERT lists `ModernBertEmbeddings`), the embedding's weight is already sharded by then and
the second `fully_shard` fails inside torch ("Invariant encountered: value was None"), which is how
`recipes/accelerate/fsdp.yaml` first failed on a GPU. tunekit names the classes to wrap itself: the
model's `_no_split_modules` minus any that contain the input embedding, which accelerate then
shards on its own as it intends. An explicit `fsdp_transformer_layer_cls_to_wrap` is left alone.

Saving: each process holds only its shard of every parameter, which `save_pretrained` cannot write
(safetensors fails on the sharded storage: "Attempted to access the data pointer on an invalid
python storage", the second way the launcher check failed on the H200). `save_whole_model` has
accelerate gather the whole weights first, as it does for every distributed kind.
"""

import logging
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from transformers import PreTrainedTokenizerBase

from tunekit.atomic import staged_files

logger = logging.getLogger(__name__)


def layers_to_wrap(model: torch.nn.Module) -> list[str] | None:
    """`_no_split_modules` without the classes that hold the input embedding; None if nothing to drop."""
    names = list(getattr(model, "_no_split_modules", None) or [])
    get_embeddings = getattr(model, "get_input_embeddings", None)
    embedding = get_embeddings() if callable(get_embeddings) else None
    if not names or embedding is None:
        return None
    holders = {
        type(module).__name__
        for module in model.modules()
        if type(module).__name__ in names and any(child is embedding for child in module.modules())
    }
    return [name for name in names if name not in holders] if holders else None


def configure_fsdp_wrapping(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """Before `accelerator.prepare`: wrap the layers, not the embedding's holder (module docstring)."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    if accelerator.distributed_type != DistributedType.FSDP or plugin is None:
        return
    if plugin.transformer_cls_names_to_wrap is not None:
        return  # the user chose
    if (names := layers_to_wrap(model)) is not None:
        logger.info("FSDP: wrapping %s (not the input embedding's holder)", ", ".join(names))
        plugin.transformer_cls_names_to_wrap = names


def save_whole_model(
    accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, output_dir: Path
) -> None:
    """The model (`save_pretrained`) and its tokenizer into `output_dir`, each file complete or
    absent. Every process calls it: under FSDP, accelerate gathers the shards onto the main process
    (elsewhere it is the model's own state dict), and the main process writes."""
    weights = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        with staged_files(output_dir) as staging:
            model.save_pretrained(staging, state_dict=weights, save_function=accelerator.save)
            tokenizer.save_pretrained(staging)
