"""How a run's splits are made from loaded data: named or carved validation, label ids that agree
across splits, the label budget (class-stratified, nested across budgets), and one fixed test
subset for every run. Loading itself is `tunekit.data.sources`.
"""

import logging
from dataclasses import dataclass

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict

from tunekit.config import DataArguments
from tunekit.data.checks import (
    check_budget,
    check_carve,
    check_classes,
    check_rows,
    check_texts,
    class_label_for,
    drop_null_texts,
)
from tunekit.data.sources import drop_texts, select_splits
from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)


@dataclass
class Splits:
    """The splits a run uses; `validation` is always present, `test` only for labeled data."""

    train: Dataset
    validation: Dataset
    test: Dataset | None = None
    dropped_test_copies: int = 0  # pretraining texts removed because the test split holds them


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
    train_split, validation_split, test_split = _split_names(data_args)
    label_column = data_args.label_column if labeled else None
    where = _where(data_args, train_split)
    train, dropped = _checked_train(raw, data_args, (train_split, test_split), labeled)
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
    test = raw[test_split] if labeled and test_split and test_split in raw else None
    if label_column:
        names = train.features[label_column].names
        validation, test = _aligned_evaluation_splits(
            raw, data_args, label_column, names, [(validation_split, validation), (test_split, test)]
        )
        if data_args.max_train_samples is not None:
            check_budget(data_args.max_train_samples, len(train), len(names))
            train = stratified_subset(train, data_args.max_train_samples, label_column, seed)
    else:
        if validation_split in raw:
            validation = drop_null_texts(
                validation, data_args.text_column, _where(data_args, validation_split)
            )
        train = _document_subset(train, data_args.max_train_samples, seed)
    if data_args.max_eval_samples is not None:
        validation = validation.select(range(min(len(validation), data_args.max_eval_samples)))
    test_size = data_args.max_test_samples or data_args.max_eval_samples
    if test is not None and test_size is not None:
        test = fixed_test_subset(test, test_size, label_column)
    return Splits(train=train, validation=validation, test=test, dropped_test_copies=dropped)


def _split_names(data_args: DataArguments) -> tuple[str | None, str | None, str | None]:
    """(train, validation, test) split names. Data files always load as train/validation/test: a
    recipe's split names (e.g. the tiny pretraining recipe's 'unlabeled') name the splits of its
    dataset, not of the user's files."""
    if not data_args.train_file:
        return data_args.train_split, data_args.validation_split, data_args.test_split
    if data_args.train_split != "train":
        logger.info("train_file given: its rows are the train split (train_split names a dataset's splits)")
    return "train", "validation", "test"


def _checked_train(
    raw: DatasetDict, data_args: DataArguments, split_names: tuple[str | None, str | None], labeled: bool
) -> tuple[Dataset, int]:
    """The train split with its texts checked (labeled) or its empty texts dropped (pretraining),
    and for pretraining without the test split's texts; with how many of those were dropped."""
    train_split, test_split = split_names
    train = select_splits(raw, train_split, "train_split")
    where = _where(data_args, train_split)
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
    return train, dropped


def _aligned_evaluation_splits(
    raw: DatasetDict,
    data_args: DataArguments,
    label_column: str,
    names: list[str],
    splits: list[tuple[str | None, Dataset | None]],
) -> tuple[Dataset | None, ...]:
    """Validation and test (in that order) with checked texts and the train split's label ids."""
    aligned = []
    for split_name, split in splits:
        if split is not None and split_name in raw:
            check_texts(split, data_args.text_column, _where(data_args, split_name))
    for split_name, split in splits:
        where = _where(data_args, split_name)
        aligned.append(None if split is None else _align_labels(split, label_column, names, where))
    return tuple(aligned)


def _document_subset(train: Dataset, max_train_samples: int | None, seed: int) -> Dataset:
    """Pretraining text has no labels to budget: a seeded subset of its documents."""
    if max_train_samples is None:
        return train
    subset = min(len(train), max_train_samples)
    logger.info("pretraining on %d training documents (max_train_samples, seed %d)", subset, seed)
    return train.shuffle(seed=seed).select(range(subset))


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
