"""Atomic writes: a reader (or a rerun after kill -9) sees the old file or the new one, never half.

Files are written under a temporary name in the same directory, then `os.replace`d; directories
are built under a temporary sibling name, then renamed into place.

Ownership and names: `mark_output` tags a directory edgecompress made, and `check_replaceable`
lets --force replace only such a directory; `safe_name` / `inside` check names and paths that
come from users' files before they become paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path


CACHE_ENV = "EDGECOMPRESS_CACHE"


def cache_root() -> Path:
    """Where datasets and cached teachers live: `$EDGECOMPRESS_CACHE`, else ~/.cache/edgecompress."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "edgecompress"


# The hidden file that marks a directory as made by edgecompress: --force replaces a directory
# only when it holds this marker, so a user's folder that merely holds a `manifest.json` is never
# deleted.
OUTPUT_MARKER = ".edgecompress-output"
TOOL = "edgecompress"
# Names that become path components (target names, ...): no separators, no leading dot.
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def safe_name(value: str, what: str) -> str:
    """`value` if it can be one path component: `^[a-z0-9][a-z0-9._-]*$` and no `..` in it.

    Raises UserError naming `what` (e.g. "name in rpi5.toml") otherwise.
    """
    from edgecompress.errors import UserError

    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise UserError(f"{what}: expected lowercase letters, digits, '.', '_' or '-' "
                        f"(starting with a letter or digit, no '..'), got {value!r}")
    return value


def inside(root: Path, path: Path) -> Path:
    """`path` resolved (a relative one under `root`); raises UserError unless it stays in `root`."""
    from edgecompress.errors import UserError

    base = Path(root).resolve()
    resolved = (base / path).resolve()
    if resolved != base and base not in resolved.parents:
        raise UserError(f"{path} resolves to {resolved}, outside {base}")
    return resolved


def mark_output(directory: Path, kind: str) -> Path:
    """Write `directory/.edgecompress-output` (tool, kind, id, created); returns its path.

    Call it on every directory edgecompress creates as an output: only marked directories may be
    replaced with --force (see check_replaceable).
    """
    marker = Path(directory) / OUTPUT_MARKER
    atomic_write_json(marker, {"tool": TOOL, "kind": kind, "id": uuid.uuid4().hex,
                               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return marker


def is_marked_output(directory: Path) -> bool:
    """True when `directory` holds a valid edgecompress marker (JSON object, tool edgecompress)."""
    marker = Path(directory) / OUTPUT_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not JSON
        return False
    return isinstance(data, dict) and data.get("tool") == TOOL


def check_replaceable(out: Path, force: bool) -> None:
    """Raise (UserError) unless `out` is missing, an empty directory, or (with `force`) a
    directory that edgecompress marked as its output (mark_output). A file at `out`, or under
    a file, is always refused."""
    from edgecompress.errors import UserError

    out = Path(out)
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{out} lies under a file ({blocker}); choose a directory for the output")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; choose a directory for the output")
    if not out.exists() or not any(out.iterdir()):
        return
    if not force:
        raise UserError(f"{out} already holds something else; pass --force to replace it")
    if not is_marked_output(out):
        raise UserError(f"{out} is not an edgecompress output (no {OUTPUT_MARKER} marker), so "
                        "--force will not delete it; choose an empty or new directory")


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


@lru_cache(maxsize=256)
def _memo_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_digest(path: Path) -> str:
    """sha256 of one file, memoised on (path, size, mtime) within a process: a file read again
    unchanged is not hashed again (identities, pinned dataset files)."""
    stat = Path(path).stat()
    return _memo_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


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
