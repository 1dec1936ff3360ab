"""Push a finished run to the Hugging Face Hub: model, tokenizer, model card, recipe, results, metrics.

`python scripts/push_to_hub.py OUTPUT_DIR --hub_model_id NAMESPACE/NAME
[--hub_private_repo [true|false]] [--hub_token TOKEN] [--hub_include_checkpoints [true|false]]`:
bools bare or valued, as in the training scripts. Without --hub_token: HF_TOKEN, then the saved
token file. HF_ENDPOINT picks another Hub endpoint.
"""

import sys

from tunekit.cli import setup_logging
from tunekit.hub.push import push_command

if __name__ == "__main__":
    setup_logging()
    sys.exit(push_command())
