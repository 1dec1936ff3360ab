"""Pretraining: masked LM (encoders), causal LM (decoders, `objective: clm`), or the LSTM language model.

`accelerate launch scripts/pretrain.py [RECIPE] [--field value ...]`. With no recipe it runs the
embedded default, recipes/tiny/pretrain.yaml. `--help` lists every field.
"""

from pathlib import Path

from tunekit.cli import run_script
from tunekit.training.tasks import run_pretraining
from tunekit.training.teardown import exit_process

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "pretrain.yaml"

if __name__ == "__main__":
    exit_process(run_script(run_pretraining, default_recipe=str(DEFAULT_RECIPE)))
