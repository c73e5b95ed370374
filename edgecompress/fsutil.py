"""Atomic writes: a reader (or a rerun after kill -9) sees the old file or the new one, never half.

Files are written under a temporary name in the same directory, then `os.replace`d; directories
are built under a temporary sibling name, then renamed into place.

Ownership and names: `mark_output` tags a directory edgecompress made, and `check_replaceable`
lets --force replace only such a directory; `safe_name` / `inside` check names and paths that
come from users' files before they become paths.

Before any work: `check_output_room` proves an output location writable (by writing there, not
by reading mode bits, which root ignores) and roomy enough; `write_error` turns the OS errors of a
write that fails anyway (a disk filled mid-run) into one line; `held_lock` keeps one process at a
time writing into a folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

CACHE_ENV = "EDGECOMPRESS_CACHE"


def cache_root() -> Path:
    """Root of cached datasets and teachers: `$EDGECOMPRESS_CACHE`, else ~/.cache/edgecompress."""
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
                               "created": datetime.now(UTC).isoformat(timespec="seconds")})
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
    """Write `data` to `path` atomically. An OS error names `path`, not the temporary name
    (write_error words it for the user); the temporary file is removed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None
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


# --- before writing: room, write errors, one writer at a time -----------------------------------

# The errors of a write the user can fix (space, a read-only or foreign location), as opposed to
# a bug: `write_error` words them in one line.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _nearest_dir(path: Path) -> Path | None:
    """`path` if it is a directory, else its nearest existing parent when that is a directory;
    None when a file stands in the way (the output checks say so, naming it)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate if candidate.is_dir() else None
    return None


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 10e9 else f"{size / 1e9:.1f} GB"


def check_output_room(out: Path, need_bytes: int = 0) -> None:
    """Raise UserError unless `out` (a folder or a file to be made) can be written, with
    `need_bytes` free on its file system.

    Writability is probed by creating and removing a temporary file in `out` or the nearest
    existing folder above it (where the output's folders will be made): permission bits say
    nothing to root, a read-only mount or a foreign owner only shows on a real write. Nothing
    is left behind. A file in the way is left to check_replaceable's message.
    """
    from edgecompress.errors import UserError

    base = _nearest_dir(Path(out))
    if base is None:
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgecompress-probe.", suffix=".tmp", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write {out}: {base} is not writable "
                        f"({os.strerror(err.errno) if err.errno else err})") from None
    free = shutil.disk_usage(base).free
    if free < need_bytes:
        raise UserError(f"not enough space for {out}: {_megabytes(free)} free on its file "
                        f"system, about {_megabytes(need_bytes)} needed")


def files_bytes(path: Path) -> int:
    """Bytes of the visible files under `path` (a file: its size; missing: 0)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*")
               if p.is_file() and not any(part.startswith(".")
                                          for part in p.relative_to(path).parts))


# How Rust's std::io::Error ends its message ("... No space left on device (os error 28)"):
# safetensors and tokenizers report a failed write that way, as their own exception types.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def write_error(err: BaseException) -> str | None:
    """One line for an OS error a write raised that the user can fix (disk full, read-only,
    permission denied), whether Python's OSError or a Rust library's error carrying its errno;
    None for any other error (a bug, reported as one)."""
    if isinstance(err, OSError):
        code, filename = err.errno, err.filename
    else:
        found = _RUST_OS_ERROR.search(str(err))
        code, filename = (int(found.group(1)) if found else None), None
    if code not in WRITE_ERRNOS:
        return None
    where = f" {filename}" if filename else ""
    verb = "access" if code in (errno.EACCES, errno.EPERM) else "write"  # a read may be denied too
    return f"cannot {verb}{where}: {os.strerror(code)}"


LOCK_FILE = ".edgecompress.lock"


@contextmanager
def held_lock(folder: Path, on_stale=None, wait: bool = False):
    """Hold `folder`/.edgecompress.lock while the block runs: one writer per folder at a time.

    The file holds the holder's pid and host; the lock itself is an exclusive `flock` on it,
    which the kernel drops when the process ends however it ends (kill -9 too), so a lock
    whose process is gone is taken over and `on_stale(line)` is told. Raises UserError while
    another live process holds it, or with `wait` waits for it (a shared cache entry that one
    process builds and the others then reuse). The file is removed on exit, Ctrl-C and errors
    included.
    """
    import fcntl
    import socket

    from edgecompress.errors import UserError

    path = Path(folder) / LOCK_FILE
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _lock_holder(path)
            os.close(fd)
            raise UserError(f"{folder} is in use by another edgecompress run ({holder}); wait "
                            "for it to finish or choose another --out") from None
        if _same_file(path, fd):  # not a file its last holder removed after we opened it
            break
        os.close(fd)
    try:
        previous = _lock_holder(path, fd)
        if previous and on_stale is not None:
            on_stale(f"note: {folder} was locked by {previous}, which is no longer running; "
                     "taking the lock over")
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)  # before unlocking: a waiter then retries on a new file
        os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _lock_holder(path: Path, fd: int | None = None) -> str:
    """"pid N on HOST" from a lock file ("" when it is empty or unreadable)."""
    try:
        text = os.pread(fd, 4096, 0).decode() if fd is not None else path.read_text()
        data = json.loads(text)
        return f"pid {int(data['pid'])} on {data['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
