"""Where text comes from: Hub datasets, local files, or the synthetic corpus (splitting it for a run
is `tunekit.data.splits`).

Everything here returns `datasets` objects, so loading, caching and `map` stay the library's job.
Nothing here knows about devices or processes.
"""

import gzip
import hashlib
import logging
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset
from datasets.exceptions import DatasetGenerationError

from tunekit.config import DataArguments
from tunekit.data.checks import (
    check_compressed_stream,
    check_file,
    check_rows,
)
from tunekit.errors import TunekitError

logger = logging.getLogger(__name__)

# File suffix -> `datasets` packaged builder. gzip is transparent to these builders.
_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
# datasets' JSON builder parses 10 MB chunks by default, and its peak memory grows with the file:
# loading IMDb train (33 MB of text) took +140 MB anonymous memory, a quarter of it +71 MB. With
# 1 MB chunks it is +25 MB and +21 MB, in the same time (9.3 s).
_BUILDER_OPTIONS: dict[str, dict[str, Any]] = {"json": {"chunksize": 1 << 20}}


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
        for path in paths:
            check_compressed_stream(path, field)
        cause = error.__cause__ or error
        detail = (
            f"{type(cause).__name__}: {str(cause).splitlines()[0]}" if str(cause) else type(cause).__name__
        )
        raise TunekitError(f"{field}: cannot read {', '.join(paths)} ({detail})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error, UnicodeDecodeError) as error:
        # Past the checked head of the file, `datasets` meets the damage itself.
        for path in paths:
            check_compressed_stream(path, field)
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
    from tunekit.data.synthetic import build_synthetic_corpus

    return build_synthetic_corpus(seed=seed)


def select_splits(raw: DatasetDict, expression: str, field_name: str) -> Dataset:
    """`'train+unsupervised'` -> the concatenation of those splits."""
    names = [name.strip() for name in expression.split("+") if name.strip()]
    missing = [name for name in names if name not in raw]
    if missing or not names:
        raise TunekitError(f"{field_name}: no split {missing or expression!r}; available: {sorted(raw)}")
    parts = [raw[name] for name in names]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)
