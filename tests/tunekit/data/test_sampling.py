from functools import partial

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader, skip_first_batches
from datasets import Dataset
from torch.utils.data import DataLoader

from tests.conftest import TINY_SIZES
from tunekit.config import ModelArguments, TrainArguments
from tunekit.data.collators import padding_collator
from tunekit.data.sampling import (
    LengthGroupedSampler,
    eval_dataloader,
    loader_options,
    sequence_lengths,
    train_dataloader,
)
from tunekit.data.tokenization import tokenize_for_classification
from tunekit.data.tokenizer_training import train_wordpiece
from tunekit.models.build import build_classifier
from tunekit.training.evaluation import evaluate_model
from tunekit.training.metrics import classification_metrics

RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(5, 400, size=301)  # 301: the last batch is short


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset.from_dict(
        {"input_ids": [list(range(n)) for n in LENGTHS], "labels": [int(n) % 2 for n in LENGTHS]}
    )


def collate(rows: list[dict]) -> list[int]:
    return [len(row["input_ids"]) for row in rows]


def indices_collate(rows: list[dict]) -> list[int]:
    # Lengths are not unique, so batches are compared as lists of lengths and as index lists.
    return [row["index"] for row in rows]


def args(**overrides) -> TrainArguments:
    return TrainArguments(**{"per_device_train_batch_size": 8, "seed": 3, **overrides})


def epoch_batches(loader, epoch: int) -> list[list[int]]:
    loader.set_epoch(epoch)
    return [list(batch) for batch in loader]


def indexed(dataset: Dataset) -> Dataset:
    return dataset.add_column("index", list(range(len(dataset))))


def test_sequence_lengths_read_from_arrow(dataset):
    assert sequence_lengths(dataset).tolist() == LENGTHS.tolist()
    assert sequence_lengths(dataset.select([4, 2]), batch_size=1).tolist() == [LENGTHS[4], LENGTHS[2]]


def test_order_is_a_function_of_seed_and_epoch():
    def order(seed: int, epoch: int) -> list[int]:
        sampler = LengthGroupedSampler(LENGTHS, group_size=8, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(3, 0) == order(3, 0) and sorted(order(3, 0)) == list(range(len(LENGTHS)))
    assert order(3, 0) != order(3, 1) and order(3, 0) != order(4, 0)
    assert order(3, 1) != order(4, 0)  # (seed, epoch) is hashed, not added


def padding_share(batches: list[list[int]]) -> float:
    padded = sum(max(batch) * len(batch) for batch in batches)
    return 1 - sum(sum(batch) for batch in batches) / padded


def test_batches_are_length_homogeneous(dataset):
    grouped = epoch_batches(prepare_data_loader(train_dataloader(dataset, collate, args(), 1)), 0)
    shuffled = epoch_batches(
        prepare_data_loader(train_dataloader(dataset, collate, args(group_by_length=False), 1)), 0
    )
    assert sorted(sum(grouped, [])) == sorted(LENGTHS.tolist())
    assert padding_share(shuffled) > 0.3 and padding_share(grouped) < 0.1
    # The longest example comes first, so a batch that does not fit fails at once.
    assert max(grouped[0]) == LENGTHS.max()


def test_resume_gets_exactly_the_remaining_batches(dataset):
    loader = prepare_data_loader(train_dataloader(indexed(dataset), indices_collate, args(), 1))
    full = epoch_batches(loader, 2)
    loader.set_epoch(2)  # what the loop does before skipping into a resumed epoch
    resumed = [list(batch) for batch in skip_first_batches(loader, 5)]
    assert resumed == full[5:]


@pytest.mark.parametrize("accumulation", [1, 2])
def test_two_ranks_split_each_step_as_one_process_would(dataset, accumulation):
    """Rank r takes micro-batches r, r+2, ...; together they hold one process's step examples."""
    data = indexed(dataset)
    one = epoch_batches(
        prepare_data_loader(
            train_dataloader(data, indices_collate, args(per_device_train_batch_size=8 * accumulation), 1)
        ),
        1,
    )
    ranks = []
    for rank in range(2):
        loader = train_dataloader(
            data,
            indices_collate,
            args(per_device_train_batch_size=4, gradient_accumulation_steps=accumulation),
            2,
        )
        ranks.append(epoch_batches(prepare_data_loader(loader, num_processes=2, process_index=rank), 1))
    assert len(ranks[0]) == len(ranks[1])
    steps = len(one) - 1  # the last, short step is topped up differently by DDP's even batches
    for step in range(steps):
        micro = slice(step * accumulation, (step + 1) * accumulation)
        both = sum((batch for rank in ranks for batch in rank[micro]), [])
        assert sorted(both) == sorted(one[step])
    seen = {i for rank in ranks for batch in rank for i in batch}
    assert seen == set(range(len(LENGTHS)))


def test_evaluation_order_is_longest_first_and_complete(dataset):
    batches = [
        list(batch) for batch in eval_dataloader(dataset, collate, args(per_device_eval_batch_size=16))
    ]
    flat = sum(batches, [])
    assert flat == sorted(LENGTHS.tolist(), reverse=True)
    assert padding_share(batches) < 0.1


def test_the_order_does_not_depend_on_torch_global_rng(dataset):
    loader = prepare_data_loader(train_dataloader(dataset, collate, args(), 1))
    torch.manual_seed(0)
    first = epoch_batches(loader, 0)
    torch.manual_seed(1)
    assert epoch_batches(loader, 0) == first


def test_length_sorted_evaluation_gives_the_metrics_of_the_plain_order():
    words = ["great", "awful", "plot", "film", "not", "the", "was", "it"]
    texts = [" ".join(words[(i * j) % len(words)] for j in range(3 + (i * 7) % 40)) for i in range(50)]
    tokenizer = train_wordpiece(texts, vocab_size=60, model_max_length=64)
    dataset = tokenize_for_classification(
        Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(50)]}),
        tokenizer,
        "text",
        "label",
        48,
    )
    torch.manual_seed(0)
    model_args = ModelArguments(
        model_type="modernbert",
        **TINY_SIZES,
        max_position_embeddings=64,
        classifier_pooling="mean",
    )
    model = build_classifier(model_args, tokenizer, ["a", "b"]).eval()
    collator = padding_collator(tokenizer, "no")
    accelerator = Accelerator(cpu=True)
    metric_fn = partial(classification_metrics, num_labels=2)
    plain = DataLoader(dataset, batch_size=8, collate_fn=collator)
    sorted_loader = eval_dataloader(dataset, collator, args(per_device_eval_batch_size=8))
    first, second = (
        evaluate_model(model, accelerator.prepare(loader), accelerator, metric_fn)
        for loader in (plain, sorted_loader)
    )
    assert first.keys() == second.keys()
    for key in first:
        assert second[key] == pytest.approx(first[key], abs=1e-5), key


@pytest.mark.parametrize(
    ("device", "enabled", "pinned"), [("cuda", True, True), ("cuda", False, False), ("cpu", True, False)]
)
def test_batches_are_pinned_for_asynchronous_copies_on_cuda_only(device, enabled, pinned):
    settings, where = args(dataloader_pin_memory=enabled, dataloader_num_workers=2), torch.device(device)
    assert loader_options(settings, where) == {"num_workers": 2, "pin_memory": pinned}
    dataset = Dataset.from_dict({"input_ids": [[1, 2, 3]] * 4, "labels": [0, 1] * 2})
    # no CUDA needed to build the loaders; they carry the option to torch's DataLoader
    loaders = (
        train_dataloader(dataset, list, settings, 1, where),
        eval_dataloader(dataset, list, settings, where),
    )
    assert all(loader.pin_memory == pinned for loader in loaders)


def test_the_accelerator_copies_batches_without_blocking_when_pinning():
    from tunekit.training.accelerator import make_accelerator

    for enabled in (True, False):
        accelerator = make_accelerator(args(use_cpu=True, dataloader_pin_memory=enabled, report_to="none"))
        assert accelerator.non_blocking is enabled
