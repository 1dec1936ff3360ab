"""The CPU proxy counts the ops a step dispatches, over the steps it is asked for only."""

import pytest
import torch

from tunekit.benchmark import dispatch_proxy
from tunekit.benchmark.dispatch_proxy import DispatchCount, counted_steps, markdown


def train_steps(model: torch.nn.Module, count: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(count):
        model(torch.randn(8, 16)).square().sum().backward()
        optimizer.step()
        optimizer.zero_grad()


def test_counts_are_per_recorded_step_and_see_a_compiled_region(monkeypatch):
    monkeypatch.setattr(dispatch_proxy, "TOP_OPS", 1000)  # every op, not only the most called
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    results: list[DispatchCount] = []
    with counted_steps("eager", first=3, steps=2, results=results):
        train_steps(model, 2)
        assert results == []  # steps 3 and 4 are not over yet
        train_steps(model, 4)
    [eager] = results
    assert eager.steps == 2 and eager.compiled_regions_per_step == 0
    names = dict(eager.top)
    assert names["aten::addmm"] == 2  # two Linear layers per forward, every recorded step alike
    assert eager.aten_ops_per_step == int(eager.aten_ops_per_step) > 20
    compiled = torch.compile(model, backend="aot_eager")
    with counted_steps("aot_eager", first=3, steps=2, results=results):
        train_steps(compiled, 5)
    assert results[1].compiled_regions_per_step >= 1
    assert set(eager.by_part) == {"eager backward", "optimizer step", dispatch_proxy.OTHER_PART}
    assert {"compiled forward", "compiled backward", "optimizer step"} <= set(results[1].by_part)
    assert sum(eager.by_part.values()) == pytest.approx(eager.aten_ops_per_step)
    text = markdown(results, {"command": "test"})
    assert "A proxy, not a GPU measurement" in text and "| eager | " in text and "1.00×" in text
