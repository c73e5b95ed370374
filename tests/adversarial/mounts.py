"""Real unwritable and full file systems for the output cases: a small tmpfs mounted on a
folder of the test's tmp dir (read-only, or with a few KiB of room). Mounting needs root and
mount rights (CAP_SYS_ADMIN): where the mount is refused the test is skipped with that reason,
never faked with mode bits (root writes through them)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): "
                    "the unwritable / full output cases need mount rights")


@contextmanager
def tmpfs(where: Path, *, size: str = "1m", readonly: bool = False,
          files: dict[str, bytes] | None = None) -> Iterator[Path]:
    """A tmpfs of `size` at `where` holding `files`, then remounted read-only if asked;
    unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "--version"], capture_output=True, check=False)
    except FileNotFoundError:
        pytest.skip("no mount command: the unwritable / full output cases need one")
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    try:
        for name, content in (files or {}).items():  # relative paths, folders made
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_bytes(content)
        if readonly:
            _mount("-o", "remount,ro", str(where))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)
