"""The model card: README.md in every output dir, and the card a Hub push sends.

Built from what the run left on disk (`recipe.yaml`, `results.json`, the tokenizer's config), so
a finished run can be carded again for another repository id without retraining. The YAML front
matter is `huggingface_hub.ModelCardData` with a `model-index` of `EvalResult`s; the body says
what the model is, how it was trained, what it scored and how to load it.

How the run was made (the last part of this module): `recipe.yaml` keeps the values as given (a
resume compares against them), so a field the run resolved otherwise (a trained tokenizer smaller
than `vocab_size`, the architecture of the model it continued from, `mixed_precision: auto`) or never
used (attention heads of an LSTM) would read as if it had shaped the model. The card shows the
resolved value, or marks the field, in a comment; it lists the framework versions and the FLOPs
formula in the words of `tunekit.training.flops`.
"""

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from tunekit.atomic import atomic_write_text
from tunekit.errors import TunekitError

PIPELINE_TAGS = {
    "sequence-classification": "text-classification",
    "masked-lm": "fill-mask",
    "causal-lm": "text-generation",
    # An encoder without a task head: features, or a classifier fine-tuned from it.
    "replaced-token-detection": "feature-extraction",
    # Saved as its masked LM (the head it trained), but it never saw a [MASK]: not a fill-mask model.
    "document-words": "feature-extraction",
}
# Validation metrics are logged as `eval_*`, the test split's as `test_*`.
SPLIT_PREFIXES = {"validation": "eval_", "test": "test_"}
METRICS = {
    "sequence-classification": {
        "accuracy": ("accuracy", "Accuracy", None),
        "f1": ("f1", "Macro-F1", "macro"),
    },
    "masked-lm": {"perplexity": ("perplexity", "Perplexity", None), "loss": ("loss", "Loss", None)},
    "language-model": {"perplexity": ("perplexity", "Perplexity", None), "loss": ("loss", "Loss", None)},
    "causal-lm": {"perplexity": ("perplexity", "Perplexity", None), "loss": ("loss", "Loss", None)},
    "replaced-token-detection": {
        "discriminator_accuracy": ("accuracy", "Replaced-token detection accuracy", None),
        "loss": ("loss", "Loss (generator + lambda x discriminator)", None),
    },
    "document-words": {"loss": ("loss", "Loss (-log p of the rest's words, idf-weighted)", None)},
}
# What the model-index calls each task (the LSTM language model predicts next and previous tokens).
TASK_TYPES = {**PIPELINE_TAGS, "language-model": "text-generation"}


def read_run(output_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resolved recipe and the results of a finished run."""
    recipe_path, results_path = output_dir / "recipe.yaml", output_dir / "results.json"
    if not results_path.is_file() or not recipe_path.is_file():
        raise TunekitError(f"{output_dir} is not a finished tunekit run (no results.json or recipe.yaml)")
    return yaml.safe_load(recipe_path.read_text()) or {}, json.loads(results_path.read_text())


def hub_dataset_id(recipe: dict[str, Any]) -> str | None:
    """The recipe's dataset as a Hub id; None for the synthetic corpus or local files."""
    name = recipe.get("dataset_name")
    if not name or name == "synthetic" or recipe.get("train_file"):
        return None
    if name.startswith(("/", ".", "~")) or Path(name).exists():
        return None
    return name


def base_model_of(recipe: dict[str, Any]) -> str | None:
    """The Hub id this run started from: a Hub model, or a tunekit pretraining that was pushed."""
    init = recipe.get("model_name_or_path")
    if not init:
        return None
    init_dir = Path(init)
    if not init_dir.exists():
        return init  # not on disk: a Hub name, which is what from_pretrained loaded
    saved = init_dir / "recipe.yaml"
    parent = (yaml.safe_load(saved.read_text()) or {}) if saved.is_file() else {}
    hub_id = parent.get("hub_model_id")
    return hub_id if parent.get("push_to_hub") and hub_id and "/" in hub_id else None


def _data_description(recipe: dict[str, Any], results: dict[str, Any]) -> str:
    if (hub_id := hub_dataset_id(recipe)) is not None:
        config = f" (config `{recipe['dataset_config_name']}`)" if recipe.get("dataset_config_name") else ""
        data = f"the Hub dataset [`{hub_id}`](https://huggingface.co/datasets/{hub_id}){config}"
    elif recipe.get("train_file"):
        names = [Path(path).name for path in recipe["train_file"]]
        data = f"local files ({', '.join(f'`{name}`' for name in names)})"
    else:
        data = f"tunekit's built-in synthetic review corpus (seed {recipe.get('synthetic_seed', 0)})"
    if results.get("train_examples") is not None:
        data += f", {results['train_examples']:,} labelled training examples"
    return data


def eval_results(results: dict[str, Any], recipe: dict[str, Any], model_name: str) -> list[EvalResult]:
    task = results.get("task", "")
    hub_id = hub_dataset_id(recipe)
    dataset_name = hub_id or ("synthetic" if not recipe.get("train_file") else "local files")
    found = []
    for split, prefix in SPLIT_PREFIXES.items():
        for key, (metric_type, metric_name, average) in METRICS.get(task, {}).items():
            if (value := results.get(prefix + key)) is None:
                continue
            found.append(
                EvalResult(
                    task_type=TASK_TYPES[task],
                    dataset_type=hub_id or dataset_name,
                    dataset_name=dataset_name,
                    dataset_config=recipe.get("dataset_config_name") if hub_id else None,
                    dataset_split=split,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(float(value), 4),
                    metric_args={"average": average} if average else None,
                )
            )
    return found


def card_metadata(recipe: dict[str, Any], results: dict[str, Any], model_name: str) -> ModelCardData:
    task = results.get("task", "")
    is_lstm = recipe.get("model_type") == "lstm"
    hub_id = hub_dataset_id(recipe)
    found = eval_results(results, recipe, model_name)
    # The LSTM is transformers code shipped in the repository: the Hub's convention for such models
    # is library transformers with the custom_code tag (trust_remote_code=True).
    tags = ["tunekit", recipe.get("model_type", "model"), task, *(["custom_code"] if is_lstm else [])]
    return ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS.get(task),
        tags=tags,
        datasets=[hub_id] if hub_id else None,
        metrics=list(METRICS.get(task, {})) or None,
        license=recipe.get("license"),
        base_model=base_model_of(recipe),
        eval_results=found or None,
    )


def _what_it_is(recipe: dict[str, Any], results: dict[str, Any]) -> str:
    model_type = recipe.get("model_type")
    direction = "bidirectional " if recipe.get("bidirectional", True) else ""
    kind = f"a {direction}LSTM" if model_type == "lstm" else f"a `{model_type}` encoder"
    if model_type in ("llama", "gpt2"):
        kind = f"a `{model_type}` decoder"
    parameters = (
        f"{results['num_parameters']:,} parameters" if results.get("num_parameters") else "a small model"
    )
    task = results.get("task")
    init = recipe.get("model_name_or_path")
    pretrained = (
        f"continued pretraining of `{base_model_of(recipe) or init}`" if init else "pretrained from scratch"
    )
    if task == "sequence-classification":
        labels = ", ".join(f"`{label}`" for label in results.get("labels", []))
        start = f"fine-tuned from `{base_model_of(recipe) or init}`" if init else "trained from scratch"
        return f"A text classifier ({labels}): {kind} with {parameters}, {start} with tunekit."
    if task == "masked-lm":
        return f"A masked language model: {kind} with {parameters}, {pretrained} by tunekit."
    if task == "causal-lm":
        return f"A causal language model: {kind} with {parameters}, {pretrained} by tunekit."
    if task == "replaced-token-detection":
        return _replaced_token_detection(kind, results)
    if task == "document-words":
        return (
            f"A text encoder: {kind} with {parameters}, {pretrained} by tunekit with a document bag of "
            "words (`objective: dbow`, PV-DBOW with a transformer): the mean-pooled encoding of a "
            "document's opening window, through the masked-LM head, predicted the words of the rest of "
            "the document, weighted by inverse document frequency. It is saved as that masked LM, whose "
            "`head` a `ForSequenceClassification` model loads; it never saw a [MASK] token, so "
            "fill-mask output means nothing."
        )
    return (
        f"A language model: {kind} with {parameters}, {pretrained} by tunekit, to predict the next token "
        "(and, when bidirectional, the previous one), ULMFiT-style, to be fine-tuned as a classifier."
    )


def _replaced_token_detection(kind: str, results: dict[str, Any]) -> str:
    """How an ELECTRA-style pretraining was done, and what was kept of it."""
    parameters = results.get("discriminator_parameters")
    size = f"{parameters:,} parameters" if parameters else "a small model"
    generator = results.get("generator_saved_in", "generator")
    return (
        f"A text encoder: {kind} with {size}, pretrained from scratch by tunekit with replaced-token "
        "detection (ELECTRA, Clark et al. 2020; `objective: rtd`). A generator masked LM "
        f"({results.get('generator_parameters', 0):,} parameters, hidden size "
        f"{results.get('generator_hidden_size')}, `generator_size_ratio` "
        f"{results.get('generator_size_ratio')} of this encoder's) filled the masked tokens with samples "
        "from its softmax, sharing this encoder's token embeddings; this encoder learned to tell every "
        "token original or replaced, its loss weighted by lambda = "
        f"{results.get('rtd_discriminator_weight')} against the generator's. This directory holds the "
        "encoder without its 1-logit detection head (fine-tuning adds its own head); the generator "
        f"is saved beside it in `{generator}/`, a masked LM that loads with `AutoModelForMaskedLM`."
    )


def _training(recipe: dict[str, Any], results: dict[str, Any], output_dir: Path) -> str:
    def number(key: str, unit: str = "") -> str:
        value = results.get(key)
        return "n/a" if value is None else f"{value:,}{unit}"

    flops = results.get("train_flops")
    lines = [
        f"- **Data:** {_data_description(recipe, results)}; "
        f"sequences of at most {recipe.get('max_seq_length')} tokens.",
        f"- **Steps:** {number('global_step')} optimizer steps ({number('epochs')} epoch(s)), "
        f"{number('tokens_seen')} tokens seen, learning rate {recipe.get('learning_rate')} "
        f"({recipe.get('lr_scheduler_type')}), batch {recipe.get('per_device_train_batch_size')} per device "
        f"x {results.get('num_processes', 1)} process(es) x {recipe.get('gradient_accumulation_steps')} "
        "accumulation.",
        f"- **Compute:** {number('wall_time', ' s')} wall time "
        f"({number('train_runtime', ' s')} in the training loop), "
        f"{'n/a' if flops is None else f'{flops:.3g}'} training FLOPs ({flops_description(recipe)}, "
        "x the tokens trained), "
        f"device `{results.get('device')}` ({results.get('machine')}), "
        f"mixed precision `{results.get('mixed_precision')}` (`no` = fp32).",
        f"- **Seed:** {recipe.get('seed')}.",
    ]
    recipe_text = resolved_recipe_yaml(recipe, results, output_dir)
    return "\n".join(lines) + (
        "\n\nThe recipe (`recipe.yaml` as given; here a comment marks each value the run resolved "
        "otherwise or did not use; `results.json` and `metrics.jsonl` hold the numbers and the "
        "training log):\n\n<details><summary>recipe.yaml</summary>\n\n"
        f"```yaml\n{recipe_text}```\n\n</details>\n\n"
        f"### Framework versions\n\n{framework_versions_section(results)}"
    )


def _results_table(found: list[EvalResult]) -> str:
    if not found:
        return "No evaluation results were recorded."
    rows = ["| Split | Metric | Value |", "|---|---|---|"]
    rows += [f"| {r.dataset_split} | {r.metric_name} | {r.metric_value:.4f} |" for r in found]
    return "\n".join(rows)


def _limitations(recipe: dict[str, Any], results: dict[str, Any]) -> str:
    notes = [
        "A small model trained on one corpus: expect it to do well only on text like its training data, "
        "and to carry that data's biases.",
        f"Inputs longer than {recipe.get('max_seq_length')} tokens were truncated in training.",
    ]
    if hub_dataset_id(recipe) is None:
        notes.append("It was trained on data that is not on the Hub (synthetic or local files).")
    if results.get("task") == "sequence-classification":
        notes.append("The model was selected on the validation split; the test split was evaluated once.")
    return "\n".join(f"- {note}" for note in notes)


def build_model_card(
    output_dir: str | Path, repo_id: str | None = None, note: str | None = None
) -> ModelCard:
    """The card for a finished run, naming `repo_id` (or the output dir, for a local card)."""
    output_dir = Path(output_dir)
    recipe, results = read_run(output_dir)
    model_id = repo_id or str(output_dir)
    data = card_metadata(recipe, results, model_name=repo_id or output_dir.name)
    sections = [
        f"# {repo_id or output_dir.name}",
        _what_it_is(recipe, results),
        f"## How it was trained\n\n{_training(recipe, results, output_dir)}",
        f"## Results\n\n{_results_table(data.eval_results or [])}",
        f"## How to use\n\n{how_to_load(output_dir, recipe, results, model_id)}",
        f"## Limitations\n\n{_limitations(recipe, results)}",
    ]
    if note:
        sections.insert(5, note)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def write_model_card(output_dir: str | Path, repo_id: str | None = None) -> Path:
    """README.md in the output dir; every run writes one after its results.json, atomically (a crash
    leaves the previous card or none, never a truncated one)."""
    path = Path(output_dir) / "README.md"
    atomic_write_text(path, str(build_model_card(output_dir, repo_id)))
    return path


# The "How to use" section: the exact lines that load each kind of tunekit model.


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
_LOAD_DOCUMENT_WORDS = """```python
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

features = pipeline("feature-extraction", model="MODEL")
print(len(features("A wonderful, moving film.")[0]))  # one vector per token

tokenizer = AutoTokenizer.from_pretrained("MODEL")
encoder = AutoModel.from_pretrained("MODEL")
# Mean pooling reads what the pretraining pooled; `head` is loaded, the classifier is new.
classifier = AutoModelForSequenceClassification.from_pretrained(
    "MODEL", num_labels=2, classifier_pooling="mean"
)
```

Fine-tune it as a classifier with tunekit:
`python scripts/finetune.py RECIPE --model_name_or_path MODEL --classifier_pooling mean`."""
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
    elif task == "document-words":
        template = _LOAD_DOCUMENT_WORDS
    else:
        template = _LOAD_LSTM_LM
    if (output_dir / "adapter_config.json").is_file():
        template += "\n\n" + _adapter_base(output_dir)
    return template.replace("MODEL", model_id)


# How the run was made: the resolved recipe, the framework versions, the FLOPs formula.

# Recipe field -> the names a saved config.json may give it (GPT-2 keeps its own names).
_CONFIG_NAMES = {
    "vocab_size": ("vocab_size",),
    "hidden_size": ("hidden_size", "n_embd"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer"),
    "num_attention_heads": ("num_attention_heads", "n_head"),
    "intermediate_size": ("intermediate_size", "n_inner"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
    "classifier_pooling": ("classifier_pooling",),
    "bidirectional": ("bidirectional",),
}
_TRANSFORMER_ONLY = ("num_attention_heads", "intermediate_size", "max_position_embeddings")
_LSTM_ONLY = ("bidirectional", "lstm_fp32_recurrence", "lstm_recurrence_rounding")
_CLASSIFIER_ONLY = ("classifier_pooling", "label_column", "label_names")
# The distributions the Trainer's card lists, under its names, plus accelerate (the loop's library).
_FRAMEWORKS = {
    "transformers": "Transformers",
    "torch": "Pytorch",
    "datasets": "Datasets",
    "tokenizers": "Tokenizers",
    "accelerate": "Accelerate",
}


def framework_versions(uses_peft: bool) -> dict[str, str]:
    """The installed versions a run used, for results.json (the card reads them from there)."""
    names = [*_FRAMEWORKS, *(["peft"] if uses_peft else [])]
    return {name: importlib.metadata.version(name) for name in names}


def framework_versions_section(results: dict[str, Any]) -> str:
    versions = results.get("framework_versions")
    if not versions:
        return "Framework versions were not recorded by this run."
    labels = {**_FRAMEWORKS, "peft": "PEFT"}
    return "\n".join(f"- {labels.get(name, name)} {version}" for name, version in versions.items())


def flops_description(recipe: dict[str, Any]) -> str:
    """The formula `tunekit.training.flops.training_flops_per_token` applies, for the card's compute line."""
    if recipe.get("model_type") == "lstm":
        return "PaLM model FLOPs: 6 x non-embedding weights per token (an LSTM has no attention term)"
    return "PaLM model FLOPs: (6 x non-embedding weights + 12 x layers x width x sequence length) per token"


def _model_config(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _notes(recipe: dict[str, Any], results: dict[str, Any], output_dir: Path) -> dict[str, tuple[Any, str]]:
    """Field -> (value to show, comment) for every field the run did not take as written."""
    config, is_lstm = _model_config(output_dir), recipe.get("model_type") == "lstm"
    notes: dict[str, tuple[Any, str]] = {}
    for name in _TRANSFORMER_ONLY if is_lstm else _LSTM_ONLY:
        if name in recipe:
            notes[name] = (recipe[name], "unused by an LSTM" if is_lstm else "unused (LSTM only)")
    if results.get("task") != "sequence-classification":
        for name in _CLASSIFIER_ONLY:
            if name in recipe:
                notes[name] = (recipe[name], "unused (pretraining)")
    if not recipe.get("use_lora"):
        for name in recipe:
            if name.startswith("lora_") or name == "merge_adapter":
                notes[name] = (recipe[name], "unused (use_lora is false)")
    loaded_tokenizer = recipe.get("tokenizer_name_or_path") or recipe.get("model_name_or_path")
    if loaded_tokenizer and "tokenizer_training_chars" in recipe:
        notes["tokenizer_training_chars"] = (
            recipe["tokenizer_training_chars"],
            "unused (no tokenizer trained)",
        )
    for name, config_names in _CONFIG_NAMES.items():
        if name not in recipe or name in notes:
            continue
        value = next((config[key] for key in config_names if config.get(key) is not None), None)
        if value is not None and value != recipe[name]:
            notes[name] = (value, f"as built; the recipe said {recipe[name]!r}")
    precision = results.get("mixed_precision")
    if precision is not None and recipe.get("mixed_precision") not in (None, precision):
        notes["mixed_precision"] = (precision, f"as run; the recipe said {recipe['mixed_precision']!r}")
    return notes


def resolved_recipe_yaml(recipe: dict[str, Any], results: dict[str, Any], output_dir: Path) -> str:
    """The recipe as YAML, each field the run resolved or ignored with its value and a comment."""
    notes = _notes(recipe, results, output_dir)
    lines = []
    for name, value in recipe.items():
        shown, comment = notes.get(name, (value, ""))
        text = yaml.safe_dump({name: shown}, sort_keys=False)
        if comment:
            first, _, rest = text.partition("\n")
            text = f"{first}  # {comment}\n{rest}"
        lines.append(text)
    return "".join(lines)
