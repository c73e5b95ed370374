"""How the CLI speaks flags: a renamed flag keeps its old name working (with a one-line note on
stderr), and a library error that names a config field is reworded with the flag's name.

    app.command("init-encoder", cls=renamed_options({"--d-model": "--hidden-size"}))

The old names are not declared options (they stay out of --help and the option count); the
command's parser sees the new name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import typer
from typer import _click  # typer 0.29 vendors click: its usage errors are these classes
from typer.core import TyperCommand, TyperGroup

from edgecompress.cli.common import err_console


def deprecation_note(old: str, new: str) -> str:
    return f"warning: {old} is deprecated; use {new}"


def rename_args(args: list[str], renames: dict[str, str]) -> list[str]:
    """`args` with every old flag name (`--old V` or `--old=V`) replaced by its new one, a note
    on stderr for each; nothing after a bare `--` is touched."""
    out, noted = [], set()
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        if name in renames:
            if name not in noted:
                err_console.print(deprecation_note(name, renames[name]), markup=False)
                noted.add(name)
            arg = renames[name] + eq + value
        out.append(arg)
    return out


def renamed_options(renames: dict[str, str]) -> type[TyperCommand]:
    """A command class that accepts each old flag name in `renames` (old -> new) as the new one."""

    class RenamedOptions(TyperCommand):
        def parse_args(self, ctx, args):
            return super().parse_args(ctx, rename_args(list(args), renames))

    RenamedOptions.renames = dict(renames)
    return RenamedOptions


def in_flags(message: str, flags: dict[str, str]) -> str:
    """`message` with each config field name in `flags` (field -> --flag) written as its flag,
    where it names the field: at the start, or before "must" / a number."""
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    pattern = re.compile(rf"(?:^|(?<=: ))({names})(?=\s+(?:must|-?\d))")
    return pattern.sub(lambda m: flags[m.group(1)], message)


class OneLineUsageErrors(TyperGroup):
    """The root group: a usage error anywhere below it (an unknown flag, a bad value, a choice
    outside an Enum) is one line on stderr naming the command's --help, exit 2 — as every other
    user mistake is. A bare group still shows its help."""

    def make_context(self, *args, **kwargs):
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except _click.exceptions.NoArgsIsHelpError:
        raise
    except _click.exceptions.UsageError as err:
        where = f" (see {err.ctx.command_path} --help)" if err.ctx is not None else ""
        message = " ".join(err.format_message().replace("Value error, ", "").split())
        err_console.print(f"error: {message}{where}", markup=False)
        raise typer.Exit(2) from None
