"""What torch.compile did during a run: graphs, graph breaks and recompilations, for results.json.

A compiled step is only worth its compile time when it compiles once: a graph break splits the
step into graphs with eager Python (and a host round trip) between them, and a recompilation pays
the compile again, or falls back to a slower shape-generic graph. Every compiled run therefore
records, in results.json (so each device run shows them too):

- `compile_graphs`: graphs dynamo produced (1 for a step without breaks, compiled once);
- `compile_graph_breaks` and `compile_graph_break_reasons`: from `torch._dynamo.utils.counters`;
- `compile_recompiles` and `compile_recompile_reasons`: compilations of a frame that was compiled
  before, because a guard failed (a new shape, a flag), from dynamo's compilation metrics.

Counts are differences over the run, so a study's cells, which share one process, each get their
own. Evaluation runs the model uncompiled (`TrainingRun.evaluate`), so the counts are the training
steps'.
"""

from dataclasses import dataclass, field

from torch._dynamo.utils import counters, get_compilation_metrics

MAX_REASONS = 5  # the first few reasons say what to fix; the counts say how often


def _graph_breaks() -> dict[str, int]:
    return dict(counters["graph_break"])


def _compilation_ids() -> set[int]:
    return {id(metric) for metric in get_compilation_metrics()}


@dataclass
class CompileWatch:
    """Snapshots dynamo's counters when created; `report` gives what happened since."""

    graphs: int = field(default_factory=lambda: counters["stats"]["unique_graphs"])
    breaks: dict[str, int] = field(default_factory=_graph_breaks)
    # dynamo keeps its last 64 compilations; the ones already there are told apart by identity.
    compilations: set[int] = field(default_factory=_compilation_ids)

    def report(self) -> dict[str, object]:
        breaks = {
            reason: count - self.breaks.get(reason, 0)
            for reason, count in _graph_breaks().items()
            if count > self.breaks.get(reason, 0)
        }
        recent = [metric for metric in get_compilation_metrics() if id(metric) not in self.compilations]
        recompiles = [metric.recompile_reason for metric in recent if metric.recompile_reason]
        return {
            "compile_graphs": counters["stats"]["unique_graphs"] - self.graphs,
            "compile_graph_breaks": sum(breaks.values()),
            "compile_graph_break_reasons": list(breaks)[:MAX_REASONS],
            "compile_recompiles": len(recompiles),
            "compile_recompile_reasons": recompiles[:MAX_REASONS],
        }
