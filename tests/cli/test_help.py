"""Every command's --help shows every option it declares, and stays torch-free (fast)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from edgecompress.cli import app

runner = CliRunner()
ROOT = get_command(app)


def _walk(command, path=()):
    """(path, command) for the root, every group and every command below it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def _option_names(command) -> list[str]:
    return [name for p in command.params if p.param_type_name == "option" and not p.hidden
            for name in (*p.opts, *p.secondary_opts)]


def _declared(command) -> list[str]:
    """A command's own options; a group also answers for its hidden default sub-command (the
    `build` of `report RUN_DIR` / `bundle RUN_DIR`), which only the group's help can show."""
    names = _option_names(command)
    for sub in getattr(command, "commands", {}).values():
        if sub.hidden:
            names += _option_names(sub)
    return names


COMMANDS = list(_walk(ROOT))


@pytest.mark.parametrize("path, command", COMMANDS,
                         ids=[" ".join(p) or "root" for p, _ in COMMANDS])
def test_help_lists_every_declared_option_when_asked_for_any_command(path, command):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    missing = [name for name in _declared(command) if name not in result.output]
    assert missing == [], f"{' '.join(path)} --help lacks {missing}"


def test_walk_reaches_every_command_and_the_hidden_defaults():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"report build", "report compare", "bundle build", "bundle verify", "search",
            "init-vit", "data fetch", "targets list"} <= paths


@pytest.mark.parametrize("group, options", [
    ("report", ["--device-results", "--json"]),
    ("bundle", ["--target", "--out", "--force", "--json"]),
])
def test_group_help_shows_the_default_build_options_when_build_is_hidden(group, options):
    result = runner.invoke(app, [group, "--help"])
    assert result.exit_code == 0
    assert all(option in result.output for option in options), result.output
    assert "RUN_DIR" in result.output.upper() and "COMMAND" in result.output


MINE = [["--help"], ["inspect", "--help"], ["init-encoder", "--help"], ["eval", "--help"],
        ["bench", "--help"], ["run", "--help"], ["demo", "--help"], ["init-vit", "--help"],
        ["search", "--help"], ["data", "list", "--help"], ["data", "fetch", "--help"],
        ["targets", "list", "--help"], ["report", "--help"], ["report", "compare", "--help"],
        ["bundle", "--help"], ["bundle", "verify", "--help"]]


def test_help_of_each_command_imports_no_torch_when_printed():
    code = ("import sys; from typer.testing import CliRunner; from edgecompress.cli import app;"
            f"codes = [CliRunner().invoke(app, args).exit_code for args in {MINE!r}];"
            "print(codes, sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'optuna')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{[0] * len(MINE)} []"
