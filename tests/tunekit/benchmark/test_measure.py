import time

import pytest
import torch

from tunekit.benchmark.measure import BatchCounter, StepWindow, optimizer_steps_timed, peak_memory


def test_window_times_exactly_the_steps_after_warmup():
    window = StepWindow(warmup_steps=2, steps=3, device=torch.device("cpu"))
    for _ in range(2):
        window.step_ended()
    opened = time.perf_counter()
    for _ in range(3):
        time.sleep(0.05)
        window.step_ended()
    closed = time.perf_counter()
    window.step_ended()  # steps after the window do not move it
    assert 0.15 <= window.seconds <= closed - opened + 1e-3
    assert 0 <= window.cpu_seconds < window.seconds  # sleeping uses no CPU


def test_an_unfinished_window_says_how_many_steps_ran():
    window = StepWindow(warmup_steps=2, steps=3, device=torch.device("cpu"))
    window.step_ended()
    with pytest.raises(RuntimeError, match="1 optimizer steps ran, 5 were needed"):
        _ = window.seconds


def test_optimizer_hook_counts_real_steps_and_reports_the_implementation():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1, fused=True)
    window = StepWindow(warmup_steps=1, steps=2, device=torch.device("cpu"))
    with optimizer_steps_timed(window) as seen:
        for _ in range(4):
            param.grad = torch.ones(3)
            optimizer.step()
    optimizer.step()  # outside the block: not counted
    assert window.completed == 4 and window.seconds > 0
    assert seen == {"name": "AdamW", "fused": True, "foreach": None}


def test_batch_counter_counts_examples_and_non_padding_tokens_by_batch_index():
    def collate(features):
        ids = torch.tensor([f["ids"] for f in features])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}

    counter = BatchCounter(collate)
    for batch in ([[1, 2, 0], [3, 0, 0]], [[1, 1, 1]], [[4, 0, 0], [5, 5, 0], [6, 6, 6]]):
        counter([{"ids": ids} for ids in batch])
    assert counter.window(warmup_steps=1, steps=2) == (4, 9)
    with pytest.raises(RuntimeError, match="only 3 batches"):
        counter.window(warmup_steps=2, steps=2)


def test_cpu_peak_memory_sees_a_large_allocation_inside_the_block():
    with peak_memory(torch.device("cpu")) as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.1)
        del block
    assert memory["mib"] >= 48
