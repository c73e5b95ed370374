"""Formats whose toolchain is an optional extra (ExecuTorch for `.pte`, OpenVINO + NNCF for `.xml`):
whether it is there, and the one line that says how to enable it.

`targets list` / `targets show` only look (`enable_hint`, no import); everything that exports,
runs, benchmarks or bundles such an artifact calls `require` first, so a missing extra is one
line and exit 2, never an ImportError traceback halfway through a run.
"""

from __future__ import annotations

import importlib
import importlib.util

from edgecompress.errors import UserError
from edgecompress.targets.profiles import OPTIONAL_FORMATS


def enable_hint(fmt: str) -> str | None:
    """"pip install 'edgecompress[<extra>]'" when `fmt` needs an extra that is not installed;
    None when it needs none or it is installed. Imports nothing (a cheap look for listings)."""
    if fmt not in OPTIONAL_FORMATS:
        return None
    _, modules, extra = OPTIONAL_FORMATS[fmt]
    found = all(_findable(module) for module in _modules(modules))
    return None if found else f"pip install 'edgecompress[{extra}]'"


def _modules(modules: str | tuple[str, ...]) -> tuple[str, ...]:
    return (modules,) if isinstance(modules, str) else tuple(modules)


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        return False


def needs(fmt: str) -> str | None:
    """What `fmt` needs beyond the default install, for listings: "ExecuTorch (installed)" or
    "ExecuTorch: pip install 'edgecompress[executorch]'"; None when it needs nothing."""
    if fmt not in OPTIONAL_FORMATS:
        return None
    toolchain, hint = OPTIONAL_FORMATS[fmt][0], enable_hint(fmt)
    return f"{toolchain}: {hint}" if hint else f"{toolchain} (installed)"


def require(fmt: str, who: str) -> None:
    """Raise UserError "<who> needs <toolchain>: pip install 'edgecompress[<extra>]'" when the
    toolchain of `fmt` does not import; nothing for formats that need no extra."""
    if fmt not in OPTIONAL_FORMATS:
        return
    toolchain, modules, extra = OPTIONAL_FORMATS[fmt]
    try:
        for module in _modules(modules):
            importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 — a missing or broken install: either way, one line
        why = "" if isinstance(err, ModuleNotFoundError) else \
            f" (import failed: {' '.join(str(err).split())[:120]})"
        raise UserError(f"{who} needs {toolchain}: pip install 'edgecompress[{extra}]'"
                        f"{why}") from None
