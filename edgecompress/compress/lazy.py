"""Packages that name their public API without importing it: a submodule loads on first use.

The stage packages (prune, distill, llm) keep their configs importable without torch, so the CLI
can derive its flags from them at `--help` time; their heavy modules load only when a name from
them is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package`: `where` maps each public name to the
    submodule defining it; another name raises AttributeError."""

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
