"""Fine-tune a classifier: a pretrained or from-scratch transformer, or the LSTM, as the recipe says.

`accelerate launch scripts/finetune.py [RECIPE] [--field value ...]`. With no recipe it runs the
embedded default, recipes/tiny/finetune_pretrained.yaml. `--help` lists every field.
"""

from pathlib import Path

from tunekit.cli import run_script
from tunekit.training.tasks import run_finetuning
from tunekit.training.teardown import exit_process

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "finetune_pretrained.yaml"

if __name__ == "__main__":
    exit_process(run_script(run_finetuning, default_recipe=str(DEFAULT_RECIPE)))
