"""The model card's "How to use" section: the exact lines that load each kind of tunekit model."""

import json
from pathlib import Path
from typing import Any


def _mask_token(output_dir: Path) -> str:
    config = output_dir / "tokenizer_config.json"
    saved = json.loads(config.read_text()) if config.is_file() else {}
    return saved.get("mask_token") or "[MASK]"


# The exact lines a user runs; MODEL is replaced by the repository id (or the local output dir).
_LOAD_CLASSIFIER = """```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

classifier = pipeline("text-classification", model="MODEL")
print(classifier("A wonderful, moving film."))

tokenizer = AutoTokenizer.from_pretrained("MODEL")
model = AutoModelForSequenceClassification.from_pretrained("MODEL")
```"""
_LOAD_LSTM_CLASSIFIER = """With tunekit installed (importing it registers the LSTM with the Auto classes):

```python
import tunekit
from transformers import pipeline

classifier = pipeline("text-classification", model="MODEL")
print(classifier("A wonderful, moving film."))
```

Without tunekit: the repository carries the model code (`lstm.py`, which imports only torch and
transformers), so `trust_remote_code=True` loads it:

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

classifier = pipeline("text-classification", model="MODEL", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("MODEL", trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained("MODEL", trust_remote_code=True)
```"""
_LOAD_MASKED_LM = """```python
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

fill = pipeline("fill-mask", model="MODEL")
print(fill("This film is MASK."))

tokenizer = AutoTokenizer.from_pretrained("MODEL")
model = AutoModelForMaskedLM.from_pretrained("MODEL")
```

Fine-tune it as a classifier with tunekit:
`python scripts/finetune.py RECIPE --model_name_or_path MODEL`."""
_LOAD_DISCRIMINATOR = """```python
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

features = pipeline("feature-extraction", model="MODEL")
print(len(features("A wonderful, moving film.")[0]))  # one vector per token

tokenizer = AutoTokenizer.from_pretrained("MODEL")
encoder = AutoModel.from_pretrained("MODEL")
classifier = AutoModelForSequenceClassification.from_pretrained("MODEL", num_labels=2)  # a new head
```

Fine-tune it as a classifier with tunekit:
`python scripts/finetune.py RECIPE --model_name_or_path MODEL`. The generator loads as a masked LM
from the `generator` folder (`AutoModelForMaskedLM`, `pipeline("fill-mask", ...)`)."""
_LOAD_LSTM_LM = """The LSTM language model loads with tunekit:

```python
from transformers import AutoTokenizer
from tunekit.lstm_lm import LSTMForLanguageModeling

tokenizer = AutoTokenizer.from_pretrained("MODEL")
model = LSTMForLanguageModeling.from_pretrained("MODEL")
```

Fine-tune it as a classifier:
`python scripts/finetune.py RECIPE --model_type lstm --model_name_or_path MODEL`."""


_LOAD_CAUSAL_LM = """```python
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

generate = pipeline("text-generation", model="MODEL")
print(generate("This film is", max_new_tokens=20))

tokenizer = AutoTokenizer.from_pretrained("MODEL")
model = AutoModelForCausalLM.from_pretrained("MODEL")
```

Fine-tune it as a classifier (last-token pooling) with tunekit:
`python scripts/finetune.py RECIPE --model_name_or_path MODEL`."""


def _adapter_base(output_dir: Path) -> str:
    """For a LoRA run: what `base_model_name_or_path` is, an absolute local path or a Hub id."""
    base = json.loads((output_dir / "adapter_config.json").read_text()).get("base_model_name_or_path", "")
    peft_line = (
        "\n\n```python\nfrom peft import AutoPeftModelForSequenceClassification\n\n"
        'model = AutoPeftModelForSequenceClassification.from_pretrained("MODEL")\n```'
    )
    if Path(base).is_absolute():
        where = (
            f"the absolute local path `{base}`: the base this run saved in `base/` (the unadapted "
            "weights under the fine-tuned config, with its labels and pooling). It loads on the machine "
            "that trained it; elsewhere, point `base_model_name_or_path` in `adapter_config.json` at "
            "your copy of `base/`"
        )
    else:
        where = (
            f"the Hub id `{base}` (set with `lora_base_model_id`); its config must carry this "
            "adapter's labels and pooling"
        )
    return f"This is a LoRA adapter. Its `base_model_name_or_path` is {where}. peft loads it too:{peft_line}"


def how_to_load(output_dir: Path, recipe: dict[str, Any], results: dict[str, Any], model_id: str) -> str:
    task, is_lstm = results.get("task"), recipe.get("model_type") == "lstm"
    if task == "sequence-classification":
        template = _LOAD_LSTM_CLASSIFIER if is_lstm else _LOAD_CLASSIFIER
    elif task == "masked-lm":
        template = _LOAD_MASKED_LM.replace("MASK.", f"{_mask_token(output_dir)}.")
    elif task == "causal-lm":
        template = _LOAD_CAUSAL_LM
    elif task == "replaced-token-detection":
        template = _LOAD_DISCRIMINATOR
    else:
        template = _LOAD_LSTM_LM
    if (output_dir / "adapter_config.json").is_file():
        template += "\n\n" + _adapter_base(output_dir)
    return template.replace("MODEL", model_id)
