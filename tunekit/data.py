"""Where text comes from and how it is split: Hub datasets, local files, or the synthetic corpus.

Everything here returns `datasets` objects, so loading, caching and `map` stay the library's job.
Nothing here knows about devices or processes.
"""

import gzip
import hashlib
import logging
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, concatenate_datasets, load_dataset
from datasets.exceptions import DatasetGenerationError

from tunekit.config import DataArguments
from tunekit.data_checks import (
    check_budget,
    check_carve,
    check_classes,
    check_file,
    check_rows,
    check_texts,
    class_label_for,
    drop_null_texts,
)
from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)

# File suffix -> `datasets` packaged builder. gzip is transparent to these builders.
_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
# datasets' JSON builder parses 10 MB chunks by default, and its peak memory grows with the file:
# loading IMDb train (33 MB of text) took +140 MB anonymous memory, a quarter of it +71 MB. With
# 1 MB chunks it is +25 MB and +21 MB, in the same time (9.3 s).
_BUILDER_OPTIONS: dict[str, dict[str, Any]] = {"json": {"chunksize": 1 << 20}}


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
    field = f"{split}_file"
    builders = {builder_for(path) for path in paths}
    if len(builders) > 1:
        raise TunekitError(f"{field}: mixes file types {sorted(builders)}")
    builder = builders.pop()
    for path in paths:
        check_file(path, field, builder)
    try:
        dataset = load_dataset(
            builder, data_files={split: paths}, split=split, **_BUILDER_OPTIONS.get(builder, {})
        )
    except DatasetGenerationError as error:
        cause = error.__cause__ or error
        detail = (
            f"{type(cause).__name__}: {str(cause).splitlines()[0]}" if str(cause) else type(cause).__name__
        )
        raise TunekitError(f"{field}: cannot read {', '.join(paths)} ({detail})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error, UnicodeDecodeError) as error:
        # Past the checked head of the file, `datasets` meets the damage itself.
        raise TunekitError(f"{field}: cannot read {', '.join(paths)} ({type(error).__name__})") from None
    check_rows(dataset, f"{field} {', '.join(paths)}")
    return dataset


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


def ensure_class_labels(
    dataset: Dataset, label_column: str, names: list[str] | None = None, where: str = "train"
) -> Dataset:
    """Make the label column a ClassLabel so stratification and id2label work for any source."""
    if label_column in dataset.column_names and isinstance(dataset.features[label_column], ClassLabel):
        return dataset
    return dataset.cast_column(label_column, class_label_for(dataset, label_column, names, where))


def carve_validation(dataset: Dataset, percentage: float, seed: int, label_column: str | None) -> DatasetDict:
    """Split validation off train with a fixed seed, stratified when there are labels."""
    stratify = label_column if label_column in dataset.column_names else None
    return dataset.train_test_split(test_size=percentage / 100.0, seed=seed, stratify_by_column=stratify)


def stratified_subset(
    dataset: Dataset, budget: int, label_column: str, seed: int, field_name: str = "max_train_samples"
) -> Dataset:
    """A class-stratified, seeded subset of `budget` examples.

    Each class is shuffled once per seed and budgets take prefixes of it, so for one seed a
    smaller budget is always a subset of a larger one: learning curves compare like with like.
    """
    if budget >= len(dataset):
        return dataset
    # Through Arrow: `dataset[label_column]` on a carved (index-mapped) split reads row by row,
    # ~2-3 s for IMDb's 22 500 training reviews, paid by every cell of a study.
    labels = dataset.with_format("arrow")[label_column].to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    if budget < len(classes):
        raise TunekitError(f"{field_name}={budget} is smaller than the number of classes ({len(classes)})")
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


def fixed_test_subset(test: Dataset, size: int, label_column: str | None) -> Dataset:
    """One test subset for every run (seed 0, not the cell's seed), class-stratified when labeled,
    so arms, budgets and seeds are all scored on the same examples with the split's class shares."""
    if label_column is None:
        return test.shuffle(seed=0).select(range(min(len(test), size)))
    return stratified_subset(test, size, label_column, seed=0, field_name="max_test_samples")


def _where(data_args: DataArguments, split: str) -> str:
    """How messages name a split: the file it came from, or the dataset's split."""
    if data_args.train_file:
        paths = data_args.train_file if split == "train" else [getattr(data_args, f"{split}_file", None)]
        return f"{split}_file {', '.join(paths)}" if all(paths) else f"{split} carved from train_file"
    return f"split {split!r} of {data_args.dataset_name or 'synthetic'}"


def prepare_splits(raw: DatasetDict, data_args: DataArguments, seed: int, labeled: bool) -> Splits:
    """Train/validation(/test) for one run: named splits, a carved validation, the label budget."""
    # Data files always load as train/validation/test: a recipe's split names (e.g. the tiny
    # pretraining recipe's 'unlabeled') name the splits of its dataset, not of the user's files.
    names = ("train", "validation", "test") if data_args.train_file else None
    train_split, validation_split, test_split = names or (
        data_args.train_split,
        data_args.validation_split,
        data_args.test_split,
    )
    if names and data_args.train_split != "train":
        logger.info("train_file given: its rows are the train split (train_split names a dataset's splits)")
    train = select_splits(raw, train_split, "train_split")
    where = _where(data_args, train_split)
    label_column = data_args.label_column if labeled else None
    for name, dataset in raw.items():
        if data_args.text_column not in dataset.column_names:
            raise TunekitError(
                f"text_column {data_args.text_column!r} not in {_where(data_args, name)} "
                f"(columns {dataset.column_names})"
            )
    if labeled:
        check_texts(train, data_args.text_column, where)
    else:
        train = drop_null_texts(train, data_args.text_column, where)
    check_rows(train, where)
    dropped = 0
    if not labeled and data_args.exclude_test_texts and test_split in raw:
        # Pretraining on text that contains test examples would leak them into the encoder.
        train, dropped = drop_texts(train, raw[test_split], data_args.text_column)
        logger.info("dropped %d pretraining texts that also appear in the test split", dropped)
    if label_column:
        train = ensure_class_labels(train, label_column, data_args.label_names, where)
        check_classes(train, label_column, where)
    if validation_split and validation_split in raw:
        validation = raw[validation_split]
    else:
        check_carve(train, data_args.validation_split_percentage, label_column, where)
        carved = carve_validation(train, data_args.validation_split_percentage, seed, label_column)
        train, validation = carved["train"], carved["test"]
        logger.info("carved %d validation examples from train (seed %d)", len(validation), seed)
    test = None
    if labeled and test_split and test_split in raw:
        test = raw[test_split]
    if label_column:
        names = train.features[label_column].names
        for split_name, split in ((validation_split, validation), (test_split, test)):
            if split is not None and split_name in raw:
                check_texts(split, data_args.text_column, _where(data_args, split_name))
        validation, test = (
            None if split is None else _align_labels(split, label_column, names, _where(data_args, name))
            for split, name in ((validation, validation_split), (test, test_split))
        )
        if data_args.max_train_samples is not None:
            check_budget(data_args.max_train_samples, len(train), len(names))
            train = stratified_subset(train, data_args.max_train_samples, label_column, seed)
    else:
        if validation_split in raw:
            where_validation = _where(data_args, validation_split)
            validation = drop_null_texts(validation, data_args.text_column, where_validation)
        if data_args.max_train_samples is not None:
            # Pretraining text has no labels to budget: a seeded subset of its documents.
            subset = min(len(train), data_args.max_train_samples)
            train = train.shuffle(seed=seed).select(range(subset))
            logger.info("pretraining on %d training documents (max_train_samples, seed %d)", subset, seed)
    if data_args.max_eval_samples is not None:
        validation = validation.select(range(min(len(validation), data_args.max_eval_samples)))
    test_size = data_args.max_test_samples or data_args.max_eval_samples
    if test is not None and test_size is not None:
        test = fixed_test_subset(test, test_size, label_column)
    return Splits(train=train, validation=validation, test=test, dropped_test_copies=dropped)


def _align_labels(dataset: Dataset, label_column: str, names: list[str], where: str) -> Dataset:
    """Give validation/test the train split's label ids, whatever order their files listed them in."""
    if label_column not in dataset.column_names:
        raise TunekitError(f"label_column {label_column!r} not in {where} (columns {dataset.column_names})")
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        if feature.names != names:
            dataset = dataset.align_labels_with_mapping({n: i for i, n in enumerate(names)}, label_column)
        return dataset
    return dataset.cast_column(label_column, class_label_for(dataset, label_column, names, where))
