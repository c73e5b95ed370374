"""Flags derived from config fields, and the request-level options every stage command shares.

A stage config's field (compress/config.py `option`) is the only definition of an option: its
type, default, help, choices and parser. `config_flags` turns the fields into typer options
(`learning_rate` -> `--lr` / `--learning-rate`, a bool -> `--x/--no-x`, a str Enum's values
in the help);
`with_flags` adds them to a command and hands the command the values the user *typed* (click's
parameter source, never a comparison with the default), keyed by field path, so `--config FILE`
plus any flag — even one equal to its default — gives the flag.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from edgecompress.cli.common import LABEL_COL, LABEL_MAP_HELP, SPLIT_COL, TEXT_COL
from edgecompress.errors import UserError

# A field's flag is `--field-name`; these keep the short names scripts already use (the field's
# own name is accepted as well).
FLAG_NAMES = {"learning_rate": "--lr", "calibration_samples": "--calib-samples",
              "calibration_method": "--calib-method"}

# Request-level options: not config fields, declared once here for every stage command.
DATASET = typer.Option(..., "--dataset", help="Dataset name, or a .csv/.jsonl path (sentence "
                                               "encoders' distillation: .txt too).")
DATASET_OR_RECORDED = typer.Option(
    None, "--dataset", help="Dataset name, or a .csv/.jsonl path (default: the dataset the "
                            "model was made with, from its finetune/prune/distill.json; "
                            "rt-polarity for minilm-l6).")
FORCE = typer.Option(False, "--force", help="Replace an existing, different output at --out.")
AS_JSON = typer.Option(False, "--json", help="Print the manifest as JSON.")
CONFIG = typer.Option(None, "--config", help="TOML with this stage's recipe keys; flags given "
                                             "override it.")
LABEL_MAP = typer.Option(None, "--label-map", help=LABEL_MAP_HELP)
EVALUATE = typer.Option(True, "--eval/--no-eval", help="Accuracy before and after (test split).")
GATE = typer.Option(None, "--gate", help="Target to bench pruned vs unpruned on.")
GATE_RUNS = typer.Option(50, "--gate-runs", help="Timed runs per artifact for --gate.")
TEACHER = typer.Option(..., "--teacher", help="Teacher: a classifier or a sentence encoder.")
STUDENT = typer.Option(..., "--student", help="Checkpoint dir (e.g. from prune), "
                                              "'layers:1,3,5' (a teacher copy) or "
                                              "'fresh:layers=3,hidden=192,...'.")
UNLABELED = typer.Option(None, "--unlabeled", help="Extra training text (.txt/.csv/.jsonl).")
TRAIN_SIZE = typer.Option(None, "--train-size", help="Train on a seeded sample of this many "
                                                     "sentences.")
QAT_TARGET = typer.Option(None, "--qat-target", help="Fake-quantize like this target's int8.")
QAT_SCHEME = typer.Option(None, "--qat-scheme", help="The --qat-target scheme to emulate "
                                                     "(default: the target's).")
DEV_SIMILARITY = typer.Option(None, "--dev-similarity", help="Sentence encoders: dev "
                                                             "Spearman set.")
COLUMNS = {"text_col": TEXT_COL, "label_col": LABEL_COL, "split_col": SPLIT_COL}


CONTEXT = "typer_context"  # the generated parameter that receives the click context
# where a value came from (click's ParameterSource names) when the user gave it
TYPED = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def flag(field: str) -> str:
    """The CLI flag of a config field: `learning_rate` -> `--lr`, `max_length` -> `--max-length`."""
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


@dataclass(frozen=True)
class Flag:
    """One generated option: the field it sets (a path in the stage's table, "train.epochs")."""

    path: str
    param: str  # the command's parameter name
    decls: tuple[str, ...]
    annotation: Any
    default: Any  # the field's default (a choice's plain string), or ... when required
    help: str
    choices: Any = None  # a str Enum
    parse: Callable[[str], Any] | None = None
    sets: tuple[str, ...] = ()  # the fields `parse`'s tuple fills

    def option(self) -> typer.models.OptionInfo:
        if self.choices is None:
            return typer.Option(self.default, *self.decls, help=self.help)
        # a plain string that the config checks: a wrong choice is its one-line error (exit 2),
        # not click's usage panel; the choices show in --help as the metavar
        names = "|".join(member.value for member in self.choices)
        return typer.Option(self.default, *self.decls, help=self.help, metavar=f"[{names}]")


def _base_type(hint) -> tuple[Any, bool]:
    """(the annotation without None, whether None is allowed)."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return hint, False


def config_flags(cls, *, prefix: str = "", defaults=None, only=None,
                 skip: tuple[str, ...] = ()) -> list[Flag]:
    """The flags of `cls`'s fields (a nested config field's fields too, under `prefix.`),
    with the defaults of `defaults` (an instance) where given, else the fields' own."""
    hints = typing.get_type_hints(cls)
    flags = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if field.name in skip or (only is not None and field.name not in only) \
                or not meta.get("cli", True) or "help" not in meta:
            continue
        hint, optional = _base_type(hints[field.name])
        if dataclasses.is_dataclass(hint):
            inner = getattr(defaults, field.name) if defaults is not None else None
            inner = inner if inner is not None else field.default_factory()
            flags += config_flags(hint, prefix=f"{prefix}{field.name}.", defaults=inner)
            continue
        if defaults is not None:
            default = getattr(defaults, field.name)
        elif field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = ...
        name = flag(field.name)
        decls = (name,) if name == "--" + field.name.replace("_", "-") \
            else (name, "--" + field.name.replace("_", "-"))
        if meta.get("parse") is not None:
            annotation = str | None if optional or default in ((), None) else str
            default = None if default == () else default
        elif meta.get("choices") is not None:
            annotation = str | None if optional else str
        elif hint is bool:
            annotation = bool
            decls = (f"{decls[0]}/--no-{decls[0][2:]}",)
        else:
            annotation = hint | None if optional else hint
        flags.append(Flag(prefix + field.name, field.name, decls, annotation, default,
                          meta["help"], meta.get("choices"), meta.get("parse"),
                          tuple(meta.get("sets", ()))))
    return flags


@dataclass
class Given:
    """The config values given on the command line, by field path, and the flags that gave
    them (for messages)."""

    values: dict
    flags: dict

    def table(self, base: dict | None = None) -> dict:
        """`base` (a stage's table, e.g. from `--config`) with the given values written over
        it; "train.epochs" lands in the `train` sub-table."""
        settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (base or {}).items()}
        for path, value in self.values.items():
            *tables, key = path.split(".")
            holder = settings
            for table in tables:
                holder = holder.setdefault(table, {})
            holder[key] = value
        return settings

    def key(self, stage: str, where: str = "") -> Callable[[str], str]:
        """How a message names setting `stage.path`: the flag when it was typed, else the
        `--config` file's key."""
        def name(path: str) -> str:
            inner = path[len(stage) + 1:] if path.startswith(stage + ".") else path
            return self.flags.get(inner) or f"key '{path}'"
        return name


def _parsed(item: Flag, value, typed: str) -> dict:
    """{field path: value} for one typed flag (a choice's plain string, a parsed list)."""
    if item.parse is not None and value is not None:
        from edgecompress.compress.config import FieldError

        try:
            value = item.parse(value)
        except FieldError as err:
            raise UserError(f"{typed}: {err.message}") from None
        except ValueError as err:
            raise UserError(f"{typed}: {err}") from None
    if item.sets:
        base = item.path.rsplit(".", 1)[0] + "." if "." in item.path else ""
        if value is None:
            return {base + item.sets[0]: None}
        return {base + name: part for name, part in zip(item.sets, value)}
    return {item.path: value}


def with_flags(flags: list[Flag]):
    """Add `flags` to a typer command whose last parameter is `given: Given`: the command gets
    only the values typed on the command line (click's parameter source)."""

    def decorate(command):
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != "given"]
        names = {p.name for p in own}
        clash = [f.param for f in flags if f.param in names]
        if clash:
            raise ValueError(f"{command.__name__}: flags {clash} clash with its own options")
        hints = typing.get_type_hints(command)
        generated = [inspect.Parameter(f.param, inspect.Parameter.KEYWORD_ONLY,
                                       default=f.option(), annotation=f.annotation)
                     for f in flags]
        by_param = {f.param: f for f in flags}
        # typer hands its click context to a parameter annotated typer.Context
        context = inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY,
                                    annotation=typer.Context)

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            ctx = kwargs.pop(CONTEXT)
            values, typed = {}, {}
            for param, item in by_param.items():
                value = kwargs.pop(param, item.default)
                source = ctx.get_parameter_source(param)
                if source is not None and source.name in TYPED:
                    parsed = _parsed(item, value, item.decls[0].split("/")[0])
                    values.update(parsed)
                    for path in parsed:
                        typed[path] = item.decls[0].split("/")[0]
            return command(*args, **kwargs, given=Given(values, typed))

        wrapper.__signature__ = signature.replace(
            parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                        if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD else p
                        for p in own] + generated + [context])
        wrapper.__annotations__ = {**{k: v for k, v in hints.items() if k in names},
                                   **{f.param: f.annotation for f in flags},
                                   CONTEXT: typer.Context}
        del wrapper.__wrapped__  # typer reads the signature above, not the command's
        return wrapper

    return decorate


def read_table(path: Path, stage: str) -> dict:
    """The stage's table from a `--config` TOML file (the whole file, or its [stage] table);
    UserError names the file when it is not one."""
    import tomllib

    if not path.is_file():
        raise UserError(f"--config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {' '.join(str(err).split())}") from None
    table = data.get(stage, data)
    if not isinstance(table, dict):
        raise UserError(f"{path}: key '{stage}': expected a table")
    return dict(table)
