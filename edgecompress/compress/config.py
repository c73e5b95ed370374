"""Stage configs are the single source of their options: frozen dataclasses that check their own
fields, and raise `FieldError` naming the *field*. The layer that read the value — a CLI flag, a
recipe key, a `--config` file — turns the field into its own name (`--learning-rate`,
`recipe.toml: [finetune] learning_rate`), so a message always names what the user typed.
"""

from __future__ import annotations

import dataclasses
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


def flag(field: str) -> str:
    """The CLI flag of a config field: `learning_rate` -> `--learning-rate`."""
    return "--" + field.replace("_", "-")
