"""The package layout the README draws: a root with only the package face and cross-cutting pieces,
and subpackages whose imports read top-down with no circle (config <- models <- data <- hub <-
training <- study, benchmark). Read from the source with `ast`, so imports inside functions count."""

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "tunekit"
# The package face, the one user-facing error type, the scripts' runner, atomic writes; and one
# re-export that saved LSTM language models' cards name (`from tunekit.lstm_lm import ...`).
ROOT_MODULES = {"__init__", "errors", "cli", "atomic", "lstm_lm"}
SUBPACKAGES = {"config", "data", "models", "training", "hub", "study", "benchmark"}
# Each layer may import the layers before it (and itself), never one after it.
LAYERS = [("config",), ("models",), ("data",), ("hub",), ("training",), ("study", "benchmark")]
# Root modules every layer may use, and the root modules that sit on top (they import subpackages).
ROOT_BASE = {"errors", "atomic"}
ROOT_TOP = {"__init__", "cli", "lstm_lm"}


def unit_of(module: str) -> str | None:
    """`tunekit.data.splits` -> `data`; `tunekit.errors` -> `errors`; outside tunekit -> None."""
    parts = module.split(".")
    if parts[0] != "tunekit":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from tunekit import synthetic` names a module of the package it comes from.
            names |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "tunekit"}
    return names


def import_graph() -> dict[str, set[str]]:
    """Edges between units (subpackages and root modules) of tunekit."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        if "metric_modules" in path.parts:
            continue  # evaluate's modules, loaded by path
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        graph[source]
        for module in imported_modules(path):
            target = unit_of(module)
            if target and target != source and target != "__init__":
                graph[source].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as a path that returns to its start, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node], _ = "done", stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_root_holds_only_the_face_and_the_cross_cutting_modules():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert modules == ROOT_MODULES
    assert packages == SUBPACKAGES
    # Every folder with code is a package (no namespace package hides a module from the tree).
    for path in PACKAGE.rglob("*.py"):
        if "metric_modules" not in path.parts:
            assert (path.parent / "__init__.py").is_file(), path


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert set(graph) == ROOT_MODULES | SUBPACKAGES
    assert find_cycle(graph) is None


def test_layers_import_only_the_layers_before_them():
    rank = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    for source, targets in import_graph().items():
        if source in ROOT_BASE:
            assert not targets, f"tunekit.{source} is a base module but imports {targets}"
        elif source in rank:
            upward = {t for t in targets if t not in ROOT_BASE and rank.get(t, len(LAYERS)) >= rank[source]}
            assert not upward, f"tunekit.{source} imports {upward}, which come after it in {LAYERS}"
        else:
            assert source in ROOT_TOP, source


def test_the_library_never_imports_tools_or_tests():
    for path in PACKAGE.rglob("*.py"):
        for module in imported_modules(path):
            assert module.split(".")[0] not in {"tools", "tests", "scripts"}, (path, module)
