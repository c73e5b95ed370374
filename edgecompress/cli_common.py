"""What every CLI command shares: the consoles, the error guard, JSON / summary output."""

from __future__ import annotations

import functools
import json
import sys

import typer
from rich.console import Console

from edgecompress.errors import ParityError, UserError

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def guarded(command):
    """Turn library errors into one line on stderr: exit 2 for user errors, 1 for parity."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as err:
            err_console.print(f"error: {err}", markup=False)
            raise typer.Exit(2) from None
        except ParityError as err:
            err_console.print(f"parity check failed: {err}", markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def emit(manifest: dict, as_json: bool, summary_lines) -> None:
    """A stage's manifest as JSON, or its human summary."""
    if as_json:
        print_json(manifest)
        return
    for line in summary_lines(manifest):
        console.print(line, markup=False)


# --- data -------------------------------------------------------------------------------------
