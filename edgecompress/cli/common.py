"""What every CLI command shares: the consoles, the error guard, JSON / summary output."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from typer import _click  # typer 0.29 vendors click: its exceptions are these classes

from edgecompress.errors import ParityError, UserError

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# The columns of a user .csv / .jsonl dataset, the same on every command that reads one.
TEXT_COL = typer.Option(None, help="Text column of a .csv/.jsonl dataset (default: text).")
LABEL_COL = typer.Option(None, help="Label column of a .csv/.jsonl dataset (default: label).")
SPLIT_COL = typer.Option(None, help="Split column (train/dev/test) of a .csv/.jsonl dataset "
                                    "(default: split; without one: drawn 80/10/10).")
LABEL_MAP_HELP = ("Dataset label -> model label, matched by name, e.g. "
                  "fresh=positive,rotten=negative.")


def configure_process() -> None:
    """What the command line sets for its own process, before any command runs (importing the
    library changes nothing): the tokenizer's threads off (they fight torch for the cores:
    training steps ran 3.7x faster without them), no hub progress bars, the converters' C++
    logging and torchao's / the exporters' import chatter quiet. A value the user set is kept.
    The hub is never reached either way: every load passes `local_files_only=True`."""
    import logging
    import os

    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                        ("TOKENIZERS_PARALLELISM", "false"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2"),
                        ("GLOG_minloglevel", "2")):
        os.environ.setdefault(name, value)
    for logger in ("torch.utils._pytree", "torchao",
                   "torch.onnx._internal.exporter._registration"):
        logging.getLogger(logger).setLevel(logging.ERROR)


def guarded(command):
    """Turn errors into one line on stderr: exit 2 for user errors, 1 for parity, and 1 for any
    other exception, whose traceback goes to a log file the line names (never to the screen)."""

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
        except (typer.Exit, typer.Abort, _click.ClickException):
            raise  # typer's own exits and usage errors
        except Exception as err:  # a bug, not a user mistake: one line, the traceback in a log
            log = write_traceback_log(err)
            where = f"traceback in {log}" if log else "traceback could not be written"
            message = " ".join(str(err).split())[:300]
            err_console.print(f"error: unexpected {type(err).__name__}: {message} ({where})",
                              markup=False)
            raise typer.Exit(1) from None

    return wrapper


def write_traceback_log(err: BaseException) -> Path | None:
    """Write `err`'s traceback to <cache root>/logs/error-<time>-<pid>.log; None if it cannot."""
    import os
    import time
    import traceback

    from edgecompress.fsutil import cache_root

    try:
        folder = cache_root() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        path.write_text(f"edgecompress {' '.join(sys.argv)}\n{text}", encoding="utf-8")
        return path
    except OSError:
        return None


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
