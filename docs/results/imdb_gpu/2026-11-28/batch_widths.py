"""Replay a study cell's training batches on the CPU and name the first one that meets the cuDNN
bug's conditions (pytorch/pytorch#196678): padded width 64 mod 128, and a padding query of the
4-layer ModernBERT beyond its sliding window (width - shortest row >= 65) attends to nothing.

The data order depends on the recipe (seed, label budget, batch size), not on the model, so the cell
runs with a 1 x 32 encoder to be quick; the lengths are read where the loop calls the model.

    python docs/results/imdb_gpu/2026-11-28/batch_widths.py CELL/recipe.yaml [--max_steps N]
"""

import sys

import tunekit.training.step as step
from tunekit.cli import run_script
from tunekit.training.tasks import run_finetuning

SMALL = "--hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --intermediate_size 64"
QUICK = (
    "--use_cpu true --mixed_precision bf16 --dataloader_num_workers 0 --eval_steps 0 --max_eval_samples 8 "
    "--max_test_samples 8 --load_best_model_at_end false --save_model false --output_dir /tmp/batch_widths"
)
forward, steps = step.model_forward, []


def recording(model, batch, accelerator, masked_only):
    ids = batch["input_ids"]
    lengths = batch["attention_mask"].sum(1).tolist() if "attention_mask" in batch else [ids.shape[1]]
    steps.append((ids.shape[1], min(lengths)))
    width, shortest = steps[-1]
    if width % 128 == 64 and width - shortest >= 65:
        print(f"step {len(steps)}: width {width}, shortest row {shortest}: the first trigger")
        sys.exit(0)
    return forward(model, batch, accelerator, masked_only)


step.model_forward = recording
run_script(run_finetuning, [*sys.argv[1:], *SMALL.split(), *QUICK.split()])
print(f"no trigger in {len(steps)} steps")
