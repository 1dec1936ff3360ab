"""What makes a dataset unusable, found before `datasets` or the loop trip over it.

Each check raises TunekitError naming the file or split and saying what was expected: a readable
UTF-8 (optionally gzip) file, rows with text, integer or string labels of at least two classes,
and enough examples for the validation carve and the label budget.
"""

import bz2
import codecs
import gzip
import logging
import lzma
import math
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset

from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)

_PROBE_BYTES = 4 << 20  # enough to catch a wrong encoding or a broken gzip without reading a corpus twice
_TEXT_BUILDERS = ("csv", "json", "text")


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


_COMPRESSED = {".gz": (gzip.open, "gzip"), ".xz": (lzma.open, "xz"), ".bz2": (bz2.open, "bzip2")}
_STREAM_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError, OSError)


def check_file(path: str, field: str, builder: str) -> None:
    """The file exists, is not empty, decompresses (gzip, xz, bz2), and starts as UTF-8 text."""
    file = Path(path)
    if file.is_dir():
        raise TunekitError(f"{field}: {path} is a directory; expected a data file")
    opener = _COMPRESSED[file.suffix][0] if file.suffix in _COMPRESSED else open
    try:
        with opener(file, "rb") as handle:
            head = handle.read(_PROBE_BYTES)
    except (gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError) as error:
        kind = {".gz": "gzip", ".xz": "xz", ".bz2": "bzip2"}[file.suffix]
        raise TunekitError(f"{field}: {path} is not a readable {kind} file ({error})") from None
    if not head.strip():
        raise TunekitError(f"{field}: {path} is empty; expected rows of data")
    if builder == "csv" and len(head) < _PROBE_BYTES and len(head.strip().splitlines()) < 2:
        raise TunekitError(f"{field}: {path} holds no rows (only a header)")
    if builder in _TEXT_BUILDERS:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _PROBE_BYTES)
        except UnicodeDecodeError as error:
            raise TunekitError(
                f"{field}: {path} is not UTF-8 text (byte {head[error.start]:#04x} at offset {error.start}); "
                "re-save it as UTF-8"
            ) from None


def check_compressed_stream(path: str, field: str) -> None:
    """Damage past the checked head of a compressed file surfaces in `datasets` as whatever the
    garbage bytes break first (a UnicodeDecodeError, a JSON error); called once a load has failed, it
    reads the stream to its end, checksum included, and names the stream when that is the cause."""
    file = Path(path)
    if file.suffix not in _COMPRESSED:
        return
    opener, kind = _COMPRESSED[file.suffix]
    try:
        with opener(file, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except _STREAM_ERRORS as error:
        raise TunekitError(
            f"{field}: {path}: the {kind} stream is corrupt ({error or type(error).__name__}); "
            "re-create or re-download the file"
        ) from None


def check_rows(dataset: Dataset, where: str) -> None:
    if len(dataset) == 0:
        raise TunekitError(f"{where} holds no rows")


def null_texts(dataset: Dataset, text_column: str) -> int:
    return dataset.data.column(text_column).null_count


def check_texts(dataset: Dataset, text_column: str, where: str) -> None:
    """Labeled examples need text: a null or blank one is a data error, not something to guess at."""
    column = dataset.data.column(text_column)
    if not (_is_text(column.type) or column.null_count == len(column)):
        raise TunekitError(f"text_column {text_column!r} in {where} holds {column.type}, not text")
    nulls = column.null_count
    blank = pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)).as_py() or 0
    if nulls or blank:
        raise TunekitError(
            f"{where}: {nulls + blank} of {len(dataset)} rows have a null or empty {text_column!r}; "
            "remove or fill them"
        )


def drop_null_texts(dataset: Dataset, text_column: str, where: str) -> Dataset:
    """Unlabeled text may have holes (a null line); they carry nothing to learn, so they go, counted."""
    nulls = null_texts(dataset, text_column)
    if not nulls:
        return dataset
    logger.warning("%s: dropped %d rows with a null %r", where, nulls, text_column)
    return dataset.filter(lambda batch: [t is not None for t in batch[text_column]], batched=True)


def class_label_for(dataset: Dataset, label_column: str, names: list[str] | None, where: str) -> ClassLabel:
    """The ClassLabel a label column maps to: integer ids 0..K-1, or strings mapped to names."""
    if label_column not in dataset.column_names:
        raise TunekitError(f"label_column {label_column!r} not in {where} (columns {dataset.column_names})")
    column = dataset.data.column(label_column)
    if column.null_count:
        raise TunekitError(f"{where}: {column.null_count} rows have a null {label_column!r}; remove them")
    values = sorted(dataset.unique(label_column))
    if _is_text(column.type):
        if names is None:
            logger.info("%s: string labels mapped to ids %s", where, {n: i for i, n in enumerate(values)})
            return ClassLabel(names=values)
        unknown = [value for value in values if value not in names]
        if unknown:
            raise TunekitError(f"{where}: labels {unknown} are not among the classes {names}")
        return ClassLabel(names=names)
    if not pa.types.is_integer(column.type):
        raise TunekitError(
            f"label_column {label_column!r} in {where} holds {column.type}; expected integer ids or strings"
        )
    if (problem := integer_label_problem(values, names)) is not None:
        raise TunekitError(f"{where}: {problem}")
    return ClassLabel(names=names or [str(i) for i in range(len(values))])


def integer_label_problem(values: list[int], names: list[str] | None) -> str | None:
    """Why sorted integer labels cannot be the class ids, with the fix; None when they can.

    Without names the ids must be exactly 0..K-1: labels 1 and 2 would otherwise train a 3-class
    model whose class 0 never occurs. With names they must index into them."""
    if names is not None:
        if values[0] >= 0 and values[-1] < len(names):
            return None
        return (
            f"labels {values} are out of range; expected the {len(names)} label_names (ids 0.."
            f"{len(names) - 1}): renumber the labels, or give one name per class"
        )
    if values == list(range(len(values))):
        return None
    if values[0] < 0:
        problem = f"labels {values} are out of range; expected ids 0..K-1"
    else:
        missing = next(i for i in range(len(values) + 1) if i not in values)
        problem = f"labels {values} are not the ids 0..K-1 (no example has label {missing})"
    renumber = ", ".join(f"{value} -> {i}" for i, value in enumerate(values[:3])) + (
        ", ..." if len(values) > 3 else ""
    )
    return (
        f"{problem}: renumber them in the data ({renumber}) and name the classes with --label_names, "
        "or write the labels as strings (each distinct string is a class)"
    )


def check_classes(dataset: Dataset, label_column: str, where: str) -> None:
    present = dataset.unique(label_column)
    if len(present) < 2:
        raise TunekitError(
            f"{where}: every example has the same label ({present[0] if present else 'none'}); "
            "classification needs at least 2 classes"
        )


def check_carve(dataset: Dataset, percentage: float, label_column: str | None, where: str) -> None:
    """`train_test_split` needs both parts non-empty and, stratified, every class in each part twice over."""
    total = len(dataset)
    held_out = math.ceil(total * percentage / 100.0)
    needed = 2
    if label_column is not None:
        labels = dataset.data.column(label_column)
        counts = pc.value_counts(labels).field("counts").to_pylist()
        classes = len(counts)
        needed = max(2 * classes, math.ceil(classes * 100.0 / percentage))
        fits = held_out >= classes and total - held_out >= classes and min(counts) >= 2
    else:
        fits = 1 <= held_out < total
    if not fits:
        what = f"{classes} classes" if label_column is not None else "text"
        need = f"about {needed}, at least 2 per class" if label_column is not None else "at least 2"
        raise TunekitError(
            f"{where}: {total} examples are too few to carve a {percentage:g}% validation split of {what} "
            f"(needs {need}); give a validation file/split or more data"
        )


def check_budget(budget: int, available: int, classes: int) -> None:
    if budget > available:
        raise TunekitError(
            f"max_train_samples={budget} is more than the {available} training examples; lower it"
        )
    if budget < classes:
        raise TunekitError(f"max_train_samples={budget} is smaller than the number of classes ({classes})")
