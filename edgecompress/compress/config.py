"""Stage configs are the single source of their options: frozen dataclasses that check their own
fields, and raise `FieldError` naming the *field*. The layer that read the value — a CLI flag, a
recipe key, a config file — turns the field into its own name (the flag `lr`,
`recipe.toml: [finetune] learning_rate`), so a message always names what the user typed.

A field is declared once, with `option(default, help=..., choices=..., parse=...)`: its type,
default, help, choices (a `str` Enum) and how a one-line string becomes its value. The CLI derives
its flags from these fields (cli/options.py), recipes and config files use the field names as
keys; nothing else repeats a default.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping

from edgecompress.errors import UserError


class FieldError(ValueError):
    """A config field holds a bad value; `field` is the dataclass field's name."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple or hint is tuple:
        return isinstance(value, tuple)
    if isinstance(hint, type):
        return isinstance(value, hint) or dataclasses.is_dataclass(hint) and isinstance(value, hint)
    return True  # Callable, Any, ...: not checked here


_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _expected(hint) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    names = [_NAMES.get(a, "a list" if typing.get_origin(a) is tuple else getattr(a, "__name__",
                                                                                 str(a)))
             for a in args]
    return " or ".join(names)


def check_types(config) -> None:
    """Raise FieldError for the first field whose value does not match its annotation."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints.get(field.name)
        if hint is not None and not _type_ok(value, hint):
            raise FieldError(field.name, f"expected {_expected(hint)}, got {value!r}")


def tuples(settings: Mapping) -> dict:
    """TOML / JSON lists -> tuples (frozen configs), nested lists included (layer maps)."""
    def convert(value):
        return tuple(convert(x) for x in value) if isinstance(value, list) else value
    return {key: convert(value) for key, value in settings.items()}


def build(cls, values: Mapping, name_of: Callable[[str], str], where: str = ""):
    """`cls(**values)`; an unknown key or a FieldError becomes one UserError line, worded by
    `name_of(field)` (a flag or a recipe key) and prefixed by `where` (a file)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    prefix = f"{where}: " if where else ""
    if unknown:
        raise UserError(f"{prefix}unknown {name_of(unknown[0])} (known: "
                        f"{', '.join(sorted(known))})")
    try:
        return cls(**values)
    except FieldError as err:
        raise UserError(f"{prefix}{name_of(err.field)}: {err.message}") from None
    except (TypeError, ValueError) as err:
        raise UserError(f"{prefix}{err}") from None


def option(default=dataclasses.MISSING, *, help: str, choices: type[enum.Enum] | None = None,
           parse: Callable[[str], object] | None = None, default_factory=dataclasses.MISSING,
           cli: bool = True, sets: tuple[str, ...] = ()):
    """A config field with what a user needs to know about it: `help`, the allowed values
    (`choices`, a str Enum; the field holds the plain string), and `parse`, which turns a
    command-line string into the field's value (lists such as "1,3,5"; raises ValueError).
    `cli=False`: the field has no flag of its own; `sets`: the fields whose values `parse`
    returns, as a tuple (one string sets both max_drop and relative)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"help": help, "choices": choices, "parse": parse,
                                       "cli": cli, "sets": sets})


def choice_values(choices: type[enum.Enum]) -> tuple[str, ...]:
    """The plain strings a str Enum allows, in declaration order."""
    return tuple(member.value for member in choices)


def check_choice(name: str, value, choices: type[enum.Enum]) -> None:
    """FieldError unless `value` is one of the Enum's strings."""
    known = choice_values(choices)
    if value not in known:
        raise FieldError(name, f"must be one of {', '.join(known)}, got {value!r}")


def parse_max_drop(text: str) -> tuple[float, bool]:
    """An allowed accuracy drop: "1.0" (points) -> (1.0, False); "2%" (relative to the fp32
    accuracy) -> (0.02, True). Raises FieldError("max_drop") for anything else."""
    stripped = str(text).strip()
    relative = stripped.endswith("%")
    try:
        value = float(stripped.rstrip("%").strip())
    except ValueError:
        raise FieldError("max_drop", f"expected points (1.0) or a percentage ('2%'), got "
                                     f"{text!r}") from None
    if not value >= 0:
        raise FieldError("max_drop", f"expected a drop >= 0, got {text!r}")
    return (value / 100, True) if relative else (value, False)
