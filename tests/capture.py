"""Stand-ins for the library's stage functions, for CLI tests that check what a command asks for."""

from __future__ import annotations

import importlib


def captured(monkeypatch, module: str, name: str) -> list:
    """Replace `module.name` (a stage function) by one that records its request and exits 0;
    returns the list the requests are appended to."""
    seen = []

    def record(request, *args, **kwargs):
        seen.append(request)
        raise SystemExit(0)

    monkeypatch.setattr(importlib.import_module(module), name, record)
    return seen
