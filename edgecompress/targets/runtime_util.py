"""Small pieces every runtime backend and exporter shares: a package's version, and hiding the
runtimes' C++ chatter on fd 2 and the exporters' warnings."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def quiet_fd2():
    """Hide fd-2 chatter (ExecuTorch's C++ logs, ai-edge-quantizer's progress bars) and Python
    warnings for the block; errors raise."""
    import warnings

    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def quiet_exporters():
    """Hide the exporters' chatter for the block: deprecation warnings (pytree, TracerWarning)
    and onnxscript's constant folder logging the folds it skips at a fixed shape ("Evaluation
    failed: cannot reshape ..."); errors still raise."""
    import warnings

    folder = logging.getLogger("onnxscript.optimizer._constant_folding")
    level = folder.level
    folder.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        folder.setLevel(level)
