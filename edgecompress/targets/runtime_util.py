"""Small pieces every runtime backend and exporter shares: a package's version, hiding the
runtimes' C++ chatter on fd 2 and the exporters' warnings, and the files an artifact is made of
(an OpenVINO IR is two)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path


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


# Files that travel with an artifact: an OpenVINO IR's graph (`.xml`) reads its weights from the
# `.bin` of the same stem. Every other format is one file.
SIDECARS = {".xml": (".bin",)}


def artifact_files(path: Path) -> list[Path]:
    """The files of the artifact named by `path`: itself, then its sidecars (an IR's .bin)."""
    path = Path(path)
    return [path, *(path.with_suffix(s) for s in SIDECARS.get(path.suffix, ()))]


def artifact_bytes(path: Path) -> int:
    """Bytes of the artifact on disk, sidecars included (an IR's .xml + .bin)."""
    return sum(p.stat().st_size for p in artifact_files(path))


def replace_artifact(src: Path, dst: Path) -> None:
    """Move the artifact `src` (and its sidecars) onto `dst`, sidecars first: once the named file
    is in place, the files it reads are too."""
    files = list(zip(artifact_files(src), artifact_files(dst)))
    for old, new in files[1:] + files[:1]:
        os.replace(old, new)


def copy_artifact(src: Path, dst: Path) -> None:
    """Copy the artifact `src` and its sidecars to `dst` (same suffix)."""
    import shutil

    for old, new in zip(artifact_files(src), artifact_files(dst)):
        shutil.copyfile(old, new)


def remove_artifact(path: Path) -> None:
    """Delete the artifact at `path` and its sidecars; missing files are fine."""
    for file in artifact_files(path):
        file.unlink(missing_ok=True)
