"""Bad data files and dataset names."""

from .workspace import (
    Case,
    F,
    P,
    csv_text,
    gzip_corrupt_past_probe,
    half_a_gzip,
    jsonl_text,
    labeled_rows,
    make_dir,
    small_synthetic_corpus,
)


def labels_one_and_two() -> list[dict]:
    """Integer labels 1 and 2, as a file that numbers its classes from 1 has them."""
    return [{"text": t, "label": 1 + i % 2} for i, (t, _) in enumerate(labeled_rows())]


DATA_CASES = [
    Case(
        "csv-4-rows-string-labels",
        F,
        lambda w: w.finetune(train=w.write("small.csv", csv_text(labeled_rows(4)))),
        "4 examples are too few to carve a 10% validation split of 2 classes",
    ),
    Case(
        "csv-4-rows-utf8-bom",
        F,
        lambda w: w.finetune(train=w.write("bom.csv", "\ufeff" + csv_text(labeled_rows(4)))),
        "4 examples are too few to carve",
    ),
    Case(
        "jsonl-null-text",
        F,
        lambda w: w.finetune(
            train=w.write(
                "null.jsonl",
                jsonl_text(
                    [{"text": t, "label": lab} for t, lab in labeled_rows(20)]
                    + [{"text": None, "label": "pos"}]
                ),
            )
        ),
        "1 of 21 rows have a null or empty 'text'",
    ),
    Case(
        "csv-blank-text",
        F,
        lambda w: w.finetune(train=w.write("blank.csv", csv_text([*labeled_rows(20), ("  ", "pos")]))),
        "1 of 21 rows have a null or empty 'text'",
    ),
    Case(
        "corrupt-gzip",
        F,
        lambda w: w.finetune(train=w.write("bad.jsonl.gz", b"\x1f\x8b\x08\x00garbage" * 20)),
        "bad.jsonl.gz is not a readable gzip file",
    ),
    Case(
        "not-gzip-at-all",
        P,
        lambda w: w.pretrain(train=w.write("plain.txt.gz", "just text, never compressed\n")),
        "plain.txt.gz is not a readable gzip file",
    ),
    Case(
        "truncated-gzip",
        P,
        lambda w: w.pretrain(train=w.write("cut.txt.gz", half_a_gzip())),
        "cut.txt.gz is not a readable gzip file",
    ),
    Case(
        "gzip-corrupt-past-4mb",
        P,
        lambda w: w.pretrain(train=w.write("late.txt.gz", gzip_corrupt_past_probe())),
        "late.txt.gz: the gzip stream is corrupt (CRC check failed",
    ),
    Case(
        "csv-not-utf8",
        F,
        lambda w: w.finetune(
            train=w.write("latin1.csv", csv_text(labeled_rows()).encode() + b"caf\xe9,pos\n")
        ),
        "latin1.csv is not UTF-8 text (byte 0xe9",
    ),
    Case("empty-file", F, lambda w: w.finetune(train=w.write("empty.csv", "")), "empty.csv is empty"),
    Case(
        "csv-header-only", F, lambda w: w.finetune(train=w.write("head.csv", "text,label\n")), "holds no rows"
    ),
    Case(
        "empty-validation-file",
        F,
        lambda w: w.finetune(validation_file=w.write("val.csv", "text,label\n")),
        "validation_file",
    ),
    Case(
        "pretraining-text-all-null",
        P,
        lambda w: w.pretrain(train=w.write("nulls.jsonl", jsonl_text([{"text": None}] * 5))),
        "holds no rows",
    ),
    Case(
        "missing-text-column",
        F,
        lambda w: w.finetune(text_column="review"),
        "text_column 'review' not in train_file",
    ),
    Case(
        "missing-label-column",
        F,
        lambda w: w.finetune(label_column="sentiment"),
        "label_column 'sentiment' not in train_file",
    ),
    Case(
        "unsupported-file-type",
        F,
        lambda w: w.finetune(train=w.write("d.xlsx", "x")),
        "unsupported file type",
    ),
    Case(
        "train-file-missing",
        F,
        lambda w: w.finetune(train=str(w.root / "gone.csv")),
        "train_file: no such file",
    ),
    Case(
        "validation-file-missing",
        F,
        lambda w: w.finetune(validation_file=str(w.root / "gone.csv")),
        "validation_file: no such file",
    ),
    Case(
        "train-file-is-a-directory",
        F,
        lambda w: w.finetune(train=make_dir(w.root / "folder.csv")),
        "is a directory; expected a data file",
    ),
    Case(
        "mixed-file-types",
        F,
        lambda w: [w.recipe(train_file=[w.labeled, w.text])],
        "train_file: mixes file types",
    ),
    Case(
        "dataset-split-missing",
        P,
        lambda w: [w.recipe(dataset_name="synthetic", train_split="unsupervised")],
        "train_split: no split ['unsupervised']",
        patch=lambda mp: mp.setattr("tunekit.data.sources._synthetic", small_synthetic_corpus),
    ),
    Case(
        "string-labels-not-label-names",
        F,
        lambda w: w.finetune("--label_names", "negative", "positive"),
        "labels ['neg', 'pos'] are not among the classes ['negative', 'positive']",
    ),
    Case(
        "int-labels-out-of-range",
        F,
        lambda w: w.finetune(
            "--label_names",
            "negative",
            "positive",
            train=w.write(
                "ids.jsonl",
                jsonl_text([{"text": t, "label": i % 3} for i, (t, _) in enumerate(labeled_rows())]),
            ),
        ),
        "labels [0, 1, 2] are out of range; expected the 2 label_names (ids 0..1): renumber the labels, "
        "or give one name per class",
    ),
    Case(
        "int-labels-not-from-zero",
        F,
        lambda w: w.finetune(train=w.write("ids12.jsonl", jsonl_text(labels_one_and_two()))),
        "labels [1, 2] are not the ids 0..K-1 (no example has label 0): renumber them in the data "
        "(1 -> 0, 2 -> 1) and name the classes with --label_names",
    ),
    Case(
        "int-labels-not-from-zero-with-names",
        F,
        lambda w: w.finetune(
            "--label_names", "neg", "pos", train=w.write("ids12.jsonl", jsonl_text(labels_one_and_two()))
        ),
        "labels [1, 2] are out of range; expected the 2 label_names (ids 0..1): renumber the labels",
    ),
    Case(
        "negative-int-labels",
        F,
        lambda w: w.finetune(
            train=w.write(
                "neg.jsonl",
                jsonl_text(
                    [{"text": t, "label": -1 if i % 2 else 0} for i, (t, _) in enumerate(labeled_rows())]
                ),
            )
        ),
        "labels [-1, 0] are out of range; expected ids 0..K-1: renumber them in the data (-1 -> 0, 0 -> 1)",
    ),
    Case(
        "float-labels",
        F,
        lambda w: w.finetune(
            train=w.write(
                "f.jsonl",
                jsonl_text([{"text": t, "label": 0.5 * (i % 2)} for i, (t, _) in enumerate(labeled_rows())]),
            )
        ),
        "label_column 'label' in train_file",
    ),
    Case(
        "null-labels",
        F,
        lambda w: w.finetune(
            train=w.write(
                "nl.jsonl",
                jsonl_text(
                    [{"text": t, "label": lab} for t, lab in labeled_rows()] + [{"text": "x", "label": None}]
                ),
            )
        ),
        "1 rows have a null 'label'",
    ),
    Case(
        "single-class",
        F,
        lambda w: w.finetune(train=w.write("one.csv", csv_text([(t, "pos") for t, _ in labeled_rows()]))),
        "classification needs at least 2 classes",
    ),
    Case(
        "validation-label-unknown",
        F,
        lambda w: w.finetune(validation_file=w.write("v.csv", csv_text([("so so", "meh"), ("fine", "pos")]))),
        "labels ['meh'] are not among the classes ['neg', 'pos']",
    ),
    Case(
        "budget-larger-than-data",
        F,
        lambda w: w.finetune("--max_train_samples", "500"),
        "max_train_samples=500 is more than the 36 training examples",
    ),
    Case(
        "budget-smaller-than-classes",
        F,
        lambda w: w.finetune("--max_train_samples", "1"),
        "max_train_samples=1 is smaller than the number of classes (2)",
    ),
    Case(
        "pretraining-text-too-small-to-carve",
        P,
        lambda w: w.pretrain(train=w.write("one.txt", "a single line of text\n")),
        "1 examples are too few to carve",
    ),
    Case(
        "dataset-hub-name-offline",
        F,
        lambda w: [w.recipe(dataset_name="no-such/dataset")],
        "dataset_name 'no-such/dataset' could not be loaded",
    ),
]
