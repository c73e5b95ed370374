"""What a command prints: with `--json`, one JSON document on stdout and nothing else there.

A command that produces results runs its work inside `json_mode(as_json)`: with --json every
line the work prints (progress, summaries, a library's stray print()) goes to stderr, so a
script can parse stdout whole. The rich consoles of cli/common.py follow sys.stdout at print
time, which is what makes the redirect reach them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from edgecompress.cli.common import print_json


@contextlib.contextmanager
def json_mode(as_json: bool) -> Iterator[None]:
    """With `as_json`, send everything printed on stdout inside the block to stderr."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def emit_result(result, as_json: bool, print_human: Callable[[object], None]) -> None:
    """`result` as one JSON document on stdout, or `print_human(result)` for people."""
    if as_json:
        print_json(jsonable(result))
    else:
        print_human(result)


def jsonable(value):
    """`value` with Paths as strings and tuples as lists, ready for json.dumps."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
