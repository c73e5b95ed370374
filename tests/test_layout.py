"""The package's shape, read from source: import rules, no cycles, small modules and functions.

    cli -> compress -> targets;  compress -> reports;  targets and reports import nothing of
    compress (nor of each other); shared modules (errors, fsutil, rundir, stats) import no package.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "edgecompress"
# Sizes are smells, not rules (STYLE.md 11): a module this long most likely holds two ideas.
# Split by concept when it does, never only to meet the number.
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
SHARED = {"errors", "fsutil", "rundir", "stats"}
# package -> the edgecompress packages it must not import
FORBIDDEN = {"targets": {"compress", "reports", "cli"}, "reports": {"compress", "targets", "cli"},
             "compress": {"cli"}, **{name: {"compress", "targets", "reports", "cli"}
                                     for name in SHARED}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every edgecompress module `path` imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("edgecompress")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgecompress"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


@lru_cache(maxsize=1)
def _graph() -> dict[str, set[str]]:
    return {name: {m for m in _imports(path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layering_rules_when_read_from_source(module):
    top = _top(module)
    bad = sorted(m for m in _graph()[module] if _top(m) in FORBIDDEN.get(top.split("_")[0], ()))
    assert not bad, f"{module} imports {bad}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (a list that starts and ends with the same module), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return stack[stack.index(child):] + [child]
            if child not in state and (cycle := visit(child)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_no_import_cycle_inside_the_package_when_every_import_counts():
    cycle = find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_find_cycle_reports_the_cycle_when_one_is_planted():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_stay_small_when_counted_in_lines(module):
    path = MODULES[module]
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: {long}"
