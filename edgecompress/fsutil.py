"""Atomic writes: a reader (or a rerun after kill -9) sees the old file or the new one, never half.

Files are written under a temporary name in the same directory, then `os.replace`d; directories
are built under a temporary sibling name, then renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


CACHE_ENV = "EDGECOMPRESS_CACHE"


def cache_root() -> Path:
    """Where datasets and cached teachers live: `$EDGECOMPRESS_CACHE`, else ~/.cache/edgecompress."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "edgecompress"


# Files that mark a directory as an edgecompress output, which --force may replace. A non-empty
# directory without one is the user's, and is never deleted.
OUTPUT_MARKERS = ("manifest.json", "run.json", "stage.json", "finetune.json", "prune.json",
                  "distill.json", "quantize.json")


def check_replaceable(out: Path, force: bool) -> None:
    """Raise (UserError) unless `out` is missing, empty, or (with `force`) an edgecompress output."""
    from edgecompress.errors import UserError

    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir():
        raise UserError(f"{out} is a file; choose a directory for the output")
    if not force:
        raise UserError(f"{out} already holds something else; pass --force to replace it")
    if not any((out / marker).exists() for marker in OUTPUT_MARKERS):
        raise UserError(f"{out} is not an edgecompress output, so --force will not delete it; "
                        "choose an empty or new directory")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path):
    return json.loads(path.read_text())


@contextmanager
def atomic_directory(final: Path):
    """Yield a temporary sibling directory; on success it replaces `final` (old one removed)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        trash = final.with_name(f".{final.name}.old")
        shutil.rmtree(trash, ignore_errors=True)
        final.rename(trash)
        tmp.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(final)
