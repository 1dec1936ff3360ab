"""Where text comes from and how it is split: Hub datasets, local files, or the synthetic corpus.

Everything here returns `datasets` objects, so loading, caching and `map` stay the library's job.
Nothing here knows about devices or processes.
"""

import hashlib
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, concatenate_datasets, load_dataset
from datasets.exceptions import DatasetGenerationError

from tunekit.config import DataArguments
from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)

# File suffix -> `datasets` packaged builder. gzip is transparent to these builders.
_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}


@dataclass
class Splits:
    """The splits a run uses; `validation` is always present, `test` only for labeled data."""

    train: Dataset
    validation: Dataset
    test: Dataset | None = None
    dropped_test_copies: int = 0  # pretraining texts removed because the test split holds them


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def drop_texts(dataset: Dataset, texts: Dataset, column: str) -> tuple[Dataset, int]:
    """Remove rows whose text occurs verbatim in `texts` (e.g. test reviews inside unlabeled text).

    `texts` are held as 16-byte digests read in batches, not as a set of whole reviews.
    """
    forbidden = {
        _digest(text) for batch in texts.select_columns([column]).iter(1000) for text in batch[column]
    }
    kept = dataset.filter(
        lambda batch: [_digest(t) not in forbidden for t in batch[column]],
        batched=True,
        desc="dropping test texts",
    )
    return kept, len(dataset) - len(kept)


def builder_for(path: str) -> str:
    suffixes = [s for s in Path(path).suffixes if s not in {".gz", ".xz", ".bz2"}]
    builder = _BUILDERS.get(suffixes[-1].lower()) if suffixes else None
    if builder is None:
        raise TunekitError(
            f"{path}: unsupported file type (use {', '.join(sorted(_BUILDERS))}, optionally .gz, .xz or .bz2)"
        )
    return builder


def _load_files(paths: str | list[str], split: str) -> Dataset:
    paths = [paths] if isinstance(paths, str) else paths
    builders = {builder_for(path) for path in paths}
    if len(builders) > 1:
        raise TunekitError(f"{split}_file: mixes file types {sorted(builders)}")
    try:
        return load_dataset(builders.pop(), data_files={split: paths}, split=split)
    except DatasetGenerationError as error:
        cause = error.__cause__ or error
        raise TunekitError(f"{split}_file: cannot read {', '.join(paths)} ({type(cause).__name__})") from None


def load_raw(data_args: DataArguments) -> DatasetDict:
    """All splits of the configured source, before any carving or sub-sampling."""
    if data_args.train_file:
        files = {
            "train": list(data_args.train_file),
            "validation": data_args.validation_file,
            "test": data_args.test_file,
        }
        # One load per split: unlabeled pretraining text and a labeled test file have different
        # columns, which a single multi-split load would reject.
        return DatasetDict({split: _load_files(paths, split) for split, paths in files.items() if paths})
    if data_args.uses_synthetic:
        return _synthetic(data_args.synthetic_seed)
    try:
        return load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    except (FileNotFoundError, ConnectionError, ValueError) as error:
        raise TunekitError(
            f"dataset_name {data_args.dataset_name!r} could not be loaded ({type(error).__name__}); "
            "offline? point train_file/validation_file/test_file at local copies"
        ) from None


@cache
def _synthetic(seed: int) -> DatasetDict:
    # Cached: the demo and the study build the same corpus for every stage in one process.
    from tunekit.synthetic import build_synthetic_corpus

    return build_synthetic_corpus(seed=seed)


def select_splits(raw: DatasetDict, expression: str, field_name: str) -> Dataset:
    """`'train+unsupervised'` -> the concatenation of those splits."""
    names = [name.strip() for name in expression.split("+") if name.strip()]
    missing = [name for name in names if name not in raw]
    if missing or not names:
        raise TunekitError(f"{field_name}: no split {missing or expression!r}; available: {sorted(raw)}")
    parts = [raw[name] for name in names]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def ensure_class_labels(dataset: Dataset, label_column: str, names: list[str] | None = None) -> Dataset:
    """Make the label column a ClassLabel so stratification and id2label work for any source."""
    if label_column not in dataset.column_names:
        raise TunekitError(f"label_column {label_column!r} not in columns {dataset.column_names}")
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        return dataset
    if names is not None:
        values = set(dataset.unique(label_column))
        if not values <= set(range(len(names))):
            raise TunekitError(
                f"label_names gives {len(names)} classes but {label_column!r} holds {sorted(values)}"
            )
        return dataset.cast_column(label_column, ClassLabel(names=names))
    return dataset.class_encode_column(label_column)


def carve_validation(dataset: Dataset, percentage: float, seed: int, label_column: str | None) -> DatasetDict:
    """Split validation off train with a fixed seed, stratified when there are labels."""
    stratify = label_column if label_column in dataset.column_names else None
    return dataset.train_test_split(test_size=percentage / 100.0, seed=seed, stratify_by_column=stratify)


def stratified_subset(dataset: Dataset, budget: int, label_column: str, seed: int) -> Dataset:
    """A class-stratified, seeded subset of `budget` examples.

    Each class is shuffled once per seed and budgets take prefixes of it, so for one seed a
    smaller budget is always a subset of a larger one: learning curves compare like with like.
    """
    if budget >= len(dataset):
        return dataset
    labels = np.asarray(dataset[label_column])
    classes, counts = np.unique(labels, return_counts=True)
    if budget < len(classes):
        raise TunekitError(
            f"max_train_samples={budget} is smaller than the number of classes ({len(classes)})"
        )
    # Largest-remainder allocation keeps the class shares and sums exactly to the budget.
    exact = counts / counts.sum() * budget
    quota = np.maximum(np.floor(exact).astype(int), 1)
    for index in np.argsort(-(exact - np.floor(exact))):
        if quota.sum() >= budget:
            break
        quota[index] += 1
    while quota.sum() > budget:
        quota[np.argmax(quota)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return dataset.select(np.sort(np.concatenate(chosen)))


def prepare_splits(raw: DatasetDict, data_args: DataArguments, seed: int, labeled: bool) -> Splits:
    """Train/validation(/test) for one run: named splits, a carved validation, the label budget."""
    train = select_splits(raw, data_args.train_split, "train_split")
    label_column = data_args.label_column if labeled else None
    dropped = 0
    if not labeled and data_args.exclude_test_texts and data_args.test_split in raw:
        # Pretraining on text that contains test examples would leak them into the encoder.
        train, dropped = drop_texts(train, raw[data_args.test_split], data_args.text_column)
        logger.info("dropped %d pretraining texts that also appear in the test split", dropped)
    for name, dataset in raw.items():
        if data_args.text_column not in dataset.column_names:
            raise TunekitError(
                f"text_column {data_args.text_column!r} not in split {name!r} "
                f"(columns {dataset.column_names})"
            )
    if label_column:
        train = ensure_class_labels(train, label_column, data_args.label_names)
    if data_args.validation_split and data_args.validation_split in raw:
        validation = raw[data_args.validation_split]
    else:
        carved = carve_validation(train, data_args.validation_split_percentage, seed, label_column)
        train, validation = carved["train"], carved["test"]
        logger.info("carved %d validation examples from train (seed %d)", len(validation), seed)
    test = None
    if labeled and data_args.test_split and data_args.test_split in raw:
        test = raw[data_args.test_split]
    if label_column:
        names = train.features[label_column].names
        validation, test = (
            None if split is None else _align_labels(split, label_column, names)
            for split in (validation, test)
        )
        if data_args.max_train_samples is not None:
            train = stratified_subset(train, data_args.max_train_samples, label_column, seed)
    if data_args.max_eval_samples is not None:
        validation = validation.select(range(min(len(validation), data_args.max_eval_samples)))
        if test is not None:
            # One fixed subset for every run, so arms and seeds are scored on the same examples.
            test = test.shuffle(seed=0).select(range(min(len(test), data_args.max_eval_samples)))
    return Splits(train=train, validation=validation, test=test, dropped_test_copies=dropped)


def _align_labels(dataset: Dataset, label_column: str, names: list[str]) -> Dataset:
    """Give validation/test the train split's label ids, whatever order their files listed them in."""
    if label_column not in dataset.column_names:
        raise TunekitError(f"label_column {label_column!r} missing from an evaluation split")
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        if feature.names != names:
            dataset = dataset.align_labels_with_mapping({n: i for i, n in enumerate(names)}, label_column)
        return dataset
    return dataset.cast_column(label_column, ClassLabel(names=names))
