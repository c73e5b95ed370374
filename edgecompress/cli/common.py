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


def guarded(command=None, *, keeps_output: bool = False):
    """Turn errors into one line on stderr: exit 2 for user errors, 1 for parity, and 1 for any
    other exception, whose traceback goes to a log file the line names (never to the screen).

    A command with an `out` argument has it checked before it starts (check_output: writable,
    room for what it writes). An OS error that the user can fix (disk full, read-only, no
    permission) is a user error too: one line, exit 2, and an `out` the command created is
    removed, so no half-written output stays — unless `keeps_output` (a run folder is a store
    of finished steps that the next run resumes from).
    """
    if command is None:
        return functools.partial(guarded, keeps_output=keeps_output)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from edgecompress.fsutil import write_error

        out = kwargs.get("out")
        out = Path(out) if isinstance(out, (str, Path)) else None
        made = out is not None and not out.exists()
        try:
            if out is not None:
                check_output(out, kwargs)
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
        except Exception as err:
            line = write_error(err)  # a write the user can fix (disk full, read-only)
            if line is None:  # a bug, not a user mistake: one line, the traceback in a log
                _unexpected(err)
            if made and not keeps_output:
                _remove_output(out)
            err_console.print(f"error: {line}", markup=False)
            raise typer.Exit(2) from None

    return wrapper


def _unexpected(err: Exception):
    log = write_traceback_log(err)
    where = f"traceback in {log}" if log else "traceback could not be written"
    message = " ".join(str(err).split())[:300]
    err_console.print(f"error: unexpected {type(err).__name__}: {message} ({where})",
                      markup=False)
    raise typer.Exit(1) from None


def _remove_output(out: Path) -> None:
    """Remove what a failed command made at `out` (it was not there before the command)."""
    import shutil

    try:
        shutil.rmtree(out) if out.is_dir() else out.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only place kept nothing anyway


# The arguments a command reads a model from: its output is sized after them (check_output).
MODEL_ARGUMENTS = ("model", "teacher")
# Room an output needs, in multiples of its source model's files. Why 3: a stage writes at most
# the source's fp32 size (pruning, distillation and quantization only shrink it) and writes
# atomically, so the new copy sits beside the one it replaces (2x); export also keeps the fp32
# ONNX / TFLite it quantizes beside the quantized artifact while it checks parity (3x).
OUTPUT_ROOM_FACTOR = 3


def check_output(out: Path, kwargs: dict) -> None:
    """UserError unless `out` is writable with room for a command's output: OUTPUT_ROOM_FACTOR
    times the files of the model it reads (nothing known: writable is enough)."""
    from edgecompress.compress.models.modules import resolve_model_path
    from edgecompress.fsutil import check_output_room, files_bytes

    source = 0
    for name in MODEL_ARGUMENTS:
        value = kwargs.get(name)
        if isinstance(value, (str, Path)):
            try:
                source = max(source, files_bytes(resolve_model_path(value)))
            except UserError:
                pass  # the command itself says what is wrong with it
    check_output_room(out, OUTPUT_ROOM_FACTOR * source)


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
