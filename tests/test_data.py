import copy
import gzip
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

from tunekit.config import DataArguments
from tunekit.data import load_raw, prepare_splits, stratified_subset
from tunekit.errors import TunekitError
from tunekit.tokenization import (
    BLOCK_ID,
    PaddingCollator,
    load_tokenizer,
    mlm_collator,
    padding_collator,
    tokenize_and_pack,
    tokenize_for_classification,
)
from tunekit.tokenizer_training import train_wordpiece

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


@pytest.fixture(scope="module")
def tokenizer():
    texts = [r["text"] for r in ROWS] * 5
    return train_wordpiece(texts, vocab_size=200, model_max_length=64)


def test_tokenizer_training_is_reproducible():
    texts = [r["text"] for r in ROWS] * 3 + ["glorvenak tesmirak pludak kravolen"] * 2
    vocabularies = [train_wordpiece(texts, vocab_size=60, model_max_length=32).get_vocab() for _ in range(3)]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]


def test_tokenizer_training_and_reload(tokenizer, tmp_path):
    encoded = tokenizer("review number 3 was great")
    assert (
        encoded["input_ids"][0] == tokenizer.cls_token_id
        and encoded["input_ids"][-1] == tokenizer.sep_token_id
    )
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token == "[MASK]"
    tokenizer.save_pretrained(tmp_path)
    reloaded = load_tokenizer(str(tmp_path))
    assert reloaded("review number 3 was great")["input_ids"] == encoded["input_ids"]
    assert reloaded.mask_token_id == tokenizer.mask_token_id
    with pytest.raises(TunekitError, match="tokenizer_name_or_path"):
        load_tokenizer(str(tmp_path / "missing"))


def test_packing_makes_full_cls_sep_blocks(tokenizer):
    dataset = Dataset.from_list(ROWS)
    blocks = tokenize_and_pack(dataset, tokenizer, "text", block_size=16)
    stream = sum(
        (
            tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
            for t in dataset["text"]
        ),
        [],
    )
    assert len(blocks) == len(stream) // 14
    assert all(
        len(ids) == 16 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        for ids in blocks["input_ids"]
    )
    assert blocks["input_ids"][0][1:15] == stream[:14]  # packing keeps the text in order
    assert blocks[BLOCK_ID] == list(range(len(blocks)))
    with pytest.raises(TunekitError, match="shorter than one block"):
        tokenize_and_pack(dataset.select(range(1)), tokenizer, "text", block_size=64)


def test_mlm_masks_depend_only_on_seed_epoch_and_block(tokenizer):
    blocks = tokenize_and_pack(Dataset.from_list(ROWS * 3), tokenizer, "text", block_size=16)
    rows = [dict(blocks[i]) for i in range(6)]
    collator = mlm_collator(tokenizer, 0.3, seed=5)
    whole = collator([dict(r) for r in rows])
    halves = [collator([dict(r) for r in rows[:3]]), collator([dict(r) for r in rows[3:]])]
    assert whole["labels"].tolist() == halves[0]["labels"].tolist() + halves[1]["labels"].tolist()
    assert (whole["labels"] != -100).any()
    collator.set_epoch(1)
    assert collator([dict(r) for r in rows])["labels"].tolist() != whole["labels"].tolist()


@pytest.mark.parametrize(("mask_replace_prob", "random_replace_prob"), [(0.8, 0.1), (1.0, 0.0), (0.5, 0.5)])
def test_batched_mlm_masks_equal_the_stock_collator_run_block_by_block(
    tokenizer, mask_replace_prob, random_replace_prob
):
    # The stock collator on a one-block batch with that block's generator (how the masks were
    # made before the masking was batched): same inputs, labels and masked positions, bit for bit.
    blocks = tokenize_and_pack(Dataset.from_list(ROWS * 3), tokenizer, "text", block_size=16)
    rows = [dict(blocks[i]) for i in range(len(blocks))]
    rows[0]["input_ids"][3] = tokenizer.pad_token_id  # special tokens inside a block are never masked
    collator = mlm_collator(tokenizer, 0.3, seed=7)
    collator.mask_replace_prob, collator.random_replace_prob = mask_replace_prob, random_replace_prob
    collator.set_epoch(2)
    batch = collator([dict(row) for row in rows])
    stock = DataCollatorForLanguageModeling(
        tokenizer,
        mlm_probability=0.3,
        mask_replace_prob=mask_replace_prob,
        random_replace_prob=random_replace_prob,
        seed=7,
    )
    expected = []
    for row in rows:
        stock.generator, stock._generator_pid = collator.block_generator(row[BLOCK_ID]), os.getpid()
        expected.append(stock.torch_call([{"input_ids": row["input_ids"]}]))
    for key in ("input_ids", "labels"):
        assert torch.equal(batch[key], torch.cat([row[key] for row in expected])), key
    assert "attention_mask" not in batch and (batch["labels"] != -100).any()
    assert (batch["labels"][0, 3] == -100).item()


def test_classification_features_truncate_and_keep_labels(tokenizer):
    dataset = Dataset.from_list(ROWS)
    features = tokenize_for_classification(dataset, tokenizer, "text", "label", max_length=5)
    assert max(len(ids) for ids in features["input_ids"]) == 5
    assert features["labels"] == dataset["label"]


@pytest.mark.parametrize(("mixed_precision", "width"), [("no", 11), ("bf16", 16), ("fp16", 16)])
def test_padding_is_dynamic_and_a_multiple_of_8_under_mixed_precision(tokenizer, mixed_precision, width):
    rows = [{"input_ids": list(range(1, n + 1)), "labels": 0} for n in (3, 11, 7)]
    batch = padding_collator(tokenizer, mixed_precision)(rows)
    assert batch["input_ids"].shape == (3, width) and batch["attention_mask"].sum().item() == 21


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("multiple", [None, 8])
def test_padding_collator_gives_what_data_collator_with_padding_gives(tokenizer, padding_side, multiple):
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = padding_side
    rng = random.Random(0)
    rows = [
        {"input_ids": [rng.randrange(5, 40) for _ in range(rng.randint(1, 30))], "labels": rng.randint(0, 1)}
        for _ in range(9)
    ]
    ours = PaddingCollator(tokenizer, pad_to_multiple_of=multiple)(copy.deepcopy(rows))
    stock = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)(copy.deepcopy(rows))
    assert ours.keys() == stock.keys()
    for key in ours:
        assert ours[key].dtype == stock[key].dtype and torch.equal(ours[key], stock[key])


@pytest.mark.parametrize(("multiple", "has_mask"), [(None, False), (8, True)])
def test_a_batch_without_padding_carries_no_attention_mask(tokenizer, multiple, has_mask):
    """All-ones masks are dropped on the host (transformers would find out on the device)."""
    rows = [{"input_ids": list(range(5, 11)), "labels": label} for label in (0, 1)]
    ours = PaddingCollator(tokenizer, pad_to_multiple_of=multiple)(rows)
    stock = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)(copy.deepcopy(rows))
    assert ("attention_mask" in ours) == has_mask == (not stock["attention_mask"].all().item())
    assert torch.equal(ours["input_ids"], stock["input_ids"]) and torch.equal(ours["labels"], stock["labels"])


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
