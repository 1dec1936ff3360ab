import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from tunekit.config import DataArguments
from tunekit.data.sources import load_raw
from tunekit.data.splits import prepare_splits, stratified_subset
from tunekit.errors import TunekitError

ROWS = [{"text": f"review number {i} was {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(40)]


def write_source(tmp_path, kind: str):
    if kind == "csv":
        path = tmp_path / "data.csv"
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in ROWS))
    elif kind == "jsonl.gz":
        path = tmp_path / "data.jsonl.gz"
        with gzip.open(path, "wt") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in ROWS)
    elif kind == "json":
        path = tmp_path / "data.json"
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    elif kind == "parquet":
        path = tmp_path / "data.parquet"
        Dataset.from_list(ROWS).to_parquet(str(path))
    else:
        path = tmp_path / "data.txt"
        path.write_text("".join(r["text"] + "\n" for r in ROWS))
    return path


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl.gz", "parquet"])
def test_labeled_file_sources(tmp_path, kind):
    args = DataArguments(train_file=[str(write_source(tmp_path, kind))], validation_split_percentage=25)
    splits = prepare_splits(load_raw(args), args, seed=0, labeled=True)
    assert len(splits.train) == 30 and len(splits.validation) == 10
    assert sorted(set(splits.validation["label"])) == [0, 1]
    assert splits.train.features["label"].num_classes == 2


def test_text_file_source_for_pretraining(tmp_path):
    args = DataArguments(train_file=[str(write_source(tmp_path, "txt"))])
    splits = prepare_splits(load_raw(args), args, seed=0, labeled=False)
    assert len(splits.train) + len(splits.validation) == 40
    assert splits.train.column_names == ["text"]


def test_synthetic_source_has_all_splits():
    args = DataArguments(dataset_name="synthetic")
    raw = load_raw(args)
    assert {"unlabeled", "train", "validation", "test"} <= set(raw)
    pretrain = prepare_splits(raw, DataArguments(dataset_name="synthetic", train_split="unlabeled"), 0, False)
    assert pretrain.test is None and len(pretrain.train) == len(raw["unlabeled"])


def test_hub_name_offline_is_a_clear_error():
    with pytest.raises(TunekitError, match="dataset_name 'no-such/dataset' could not be loaded"):
        load_raw(DataArguments(dataset_name="no-such/dataset"))


def test_bad_columns_and_splits_are_named(tmp_path):
    path = str(write_source(tmp_path, "csv"))
    args = DataArguments(train_file=[path], text_column="body")
    with pytest.raises(TunekitError, match="text_column 'body'"):
        prepare_splits(load_raw(args), args, 0, True)
    args = DataArguments(dataset_name="synthetic", train_split="train+unsupervised")
    with pytest.raises(TunekitError, match="train_split: no split.*unsupervised"):
        prepare_splits(load_raw(args), args, 0, True)


def test_data_files_are_their_own_splits_whatever_the_recipe_names(tmp_path):
    # The tiny pretraining recipe names the synthetic corpus's 'unlabeled' split; given files, the
    # files are the data.
    path = str(write_source(tmp_path, "csv"))
    args = DataArguments(train_file=[path], train_split="unlabeled", validation_split=None)
    splits = prepare_splits(load_raw(args), args, 0, labeled=False)
    assert len(splits.train) + len(splits.validation) == 40


def test_validation_carve_is_deterministic_and_seeded(tmp_path):
    args = DataArguments(train_file=[str(write_source(tmp_path, "csv"))])
    raw = load_raw(args)
    first, again = (prepare_splits(raw, args, seed=3, labeled=True) for _ in range(2))
    other = prepare_splits(raw, args, seed=4, labeled=True)
    assert first.validation["text"] == again.validation["text"]
    assert first.validation["text"] != other.validation["text"]
    assert not set(first.validation["text"]) & set(first.train["text"])


def test_stratified_budget_keeps_class_shares_and_nests():
    labels = [0] * 900 + [1] * 100
    dataset = Dataset.from_dict({"text": [str(i) for i in range(1000)], "label": labels})
    small, large = stratified_subset(dataset, 50, "label", 0), stratified_subset(dataset, 200, "label", 0)
    assert len(small) == 50 and np.bincount(small["label"]).tolist() == [45, 5]
    assert np.bincount(large["label"]).tolist() == [180, 20]
    assert set(small["text"]) <= set(large["text"])  # learning curves compare like with like
    assert stratified_subset(dataset, 50, "label", 0)["text"] == small["text"]
    assert stratified_subset(dataset, 50, "label", 1)["text"] != small["text"]
    assert len(stratified_subset(dataset, 5000, "label", 0)) == 1000
    with pytest.raises(TunekitError, match="max_train_samples=1"):
        stratified_subset(dataset, 1, "label", 0)


def test_label_budget_applies_to_train_only(tmp_path):
    args = DataArguments(train_file=[str(write_source(tmp_path, "csv"))], max_train_samples=6)
    splits = prepare_splits(load_raw(args), args, 0, True)
    assert len(splits.train) == 6 and sorted(splits.train["label"]) == [0, 0, 0, 1, 1, 1]
    assert len(splits.validation) == 4


def test_test_subset_is_stratified_and_the_same_for_every_seed(tmp_path):
    train = write_source(tmp_path, "csv")
    test = tmp_path / "test.jsonl"
    # 3:1 negatives first, so a prefix (the old way) would be all one class.
    test.write_text("".join(json.dumps({"text": f"t{i}", "label": int(i >= 300)}) + "\n" for i in range(400)))
    texts = []
    for seed in (0, 1):
        args = DataArguments(
            train_file=[str(train)], test_file=str(test), max_test_samples=40, max_eval_samples=3
        )
        splits = prepare_splits(load_raw(args), args, seed, True)
        assert np.bincount(splits.test["label"]).tolist() == [30, 10]
        assert len(splits.validation) == 3  # max_eval_samples caps validation on its own
        texts.append(splits.test["text"])
    assert texts[0] == texts[1]  # every cell is scored on the same examples
    args = DataArguments(train_file=[str(train)], test_file=str(test), max_eval_samples=8)
    assert np.bincount(prepare_splits(load_raw(args), args, 0, True).test["label"]).tolist() == [6, 2]


def test_test_texts_are_dropped_from_pretraining_text(tmp_path):
    test_rows = ROWS[:5]
    unlabeled = [{"text": r["text"]} for r in ROWS[3:]] + [{"text": ROWS[0]["text"]}]  # 3 copies of test rows
    (tmp_path / "unlabeled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in unlabeled))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test_rows))
    args = DataArguments(
        train_file=[str(tmp_path / "unlabeled.jsonl")], test_file=str(tmp_path / "test.jsonl")
    )
    splits = prepare_splits(load_raw(args), args, seed=0, labeled=False)
    assert splits.dropped_test_copies == 3
    kept = set(splits.train["text"]) | set(splits.validation["text"])
    assert not kept & {r["text"] for r in test_rows} and len(kept) == len(ROWS) - 5
    keep_all = DataArguments(train_file=args.train_file, test_file=args.test_file, exclude_test_texts=False)
    assert prepare_splits(load_raw(keep_all), keep_all, 0, False).dropped_test_copies == 0


def test_max_train_samples_takes_a_seeded_subset_of_pretraining_documents(tmp_path):
    (tmp_path / "unlabeled.jsonl").write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in ROWS))
    full = DataArguments(train_file=[str(tmp_path / "unlabeled.jsonl")])
    everything = prepare_splits(load_raw(full), full, seed=0, labeled=False)
    args = DataArguments(train_file=full.train_file, max_train_samples=7)
    subsets = [list(prepare_splits(load_raw(args), args, seed, False).train["text"]) for seed in (0, 0, 1)]
    assert len(subsets[0]) == 7 and subsets[0] == subsets[1] and subsets[0] != subsets[2]
    assert set(subsets[0]) <= set(everything.train["text"])  # drawn after the validation is carved
    larger = DataArguments(train_file=full.train_file, max_train_samples=10_000)
    assert len(prepare_splits(load_raw(larger), larger, 0, False).train) == len(everything.train)


def test_label_names_name_integer_labels(tmp_path):
    args = DataArguments(
        train_file=[str(write_source(tmp_path, "json"))], label_names=["negative", "positive"]
    )
    splits = prepare_splits(load_raw(args), args, 0, True)
    assert splits.train.features["label"].names == ["negative", "positive"]
    assert splits.validation.features["label"].names == ["negative", "positive"]
    bad = DataArguments(train_file=args.train_file, label_names=["only"])
    with pytest.raises(TunekitError, match=r"labels \[0, 1\] are out of range; expected the 1 label_names"):
        prepare_splits(load_raw(bad), bad, 0, True)


def test_integer_labels_must_be_the_class_ids_and_the_hint_fits_the_case():
    from tunekit.data.checks import integer_label_problem

    assert integer_label_problem([0, 1, 2], None) is None
    assert integer_label_problem([0, 1], ["neg", "pos"]) is None
    assert integer_label_problem([1], ["neg", "pos"]) is None  # a class absent from this split
    gap = integer_label_problem([0, 2], None)  # class 1 would be trained but never seen
    assert gap is not None and "no example has label 1" in gap and "(0 -> 0, 2 -> 1)" in gap
    unnamed = integer_label_problem([1, 2], None)
    assert unnamed is not None and "labels [1, 2]" in unnamed and "--label_names" in unnamed
    named = integer_label_problem([1, 2], ["neg", "pos"])
    assert named is not None and "labels [1, 2]" in named and "label_names" not in named.split(":")[1]
    assert "set label_names" not in named and "renumber the labels" in named


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n{not json\n')
    with pytest.raises(TunekitError, match="train_file: cannot read .*broken.jsonl"):
        load_raw(DataArguments(train_file=[str(path)]))


SHARED_DATA = os.environ.get("TUNEKIT_SHARED_DATA")


@pytest.mark.skipif(
    not SHARED_DATA, reason="TUNEKIT_SHARED_DATA is unset (.ci/run sets it to ../shared/data)"
)
def test_real_imdb_copy_loads_splits_and_deduplicates():
    imdb = Path(SHARED_DATA) / "imdb"
    labeled = DataArguments(
        train_file=[str(imdb / "train.jsonl.gz")],
        test_file=str(imdb / "test.jsonl.gz"),
        label_names=["negative", "positive"],
        max_train_samples=1000,
    )
    splits = prepare_splits(load_raw(labeled), labeled, seed=0, labeled=True)
    assert len(splits.test) == 25_000 and len(splits.validation) == 2_500
    assert np.bincount(splits.train["label"]).tolist() == [500, 500]
    assert splits.test.features["label"].names == ["negative", "positive"]
    pretrain = DataArguments(train_file=[str(imdb / "unsup.jsonl.gz")], test_file=str(imdb / "test.jsonl.gz"))
    # The data README counts 266 distinct test texts inside unsup; 4 of them occur twice: 270 rows.
    assert prepare_splits(load_raw(pretrain), pretrain, seed=0, labeled=False).dropped_test_copies == 270
