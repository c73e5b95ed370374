"""The [search] table of a recipe: which recipe keys a search varies, and over what.

    [search.prune]
    keep_layers = [[1, 3, 5], [1, 5], [0, 2, 4]]      # choices: any TOML values
    heads = { low = 0.0, high = 0.5, step = 0.25 }     # a range (step, log optional)
    [search.distill.train]
    epochs = [1, 2, 3]
    [search.quantize.schemes]
    x86-cpu = ["default", "dynamic-int8-per-channel", "dynamic-int8-int4-embedding"]

Each leaf names a recipe key by its path (nested tables or a quoted dotted key); a list is a set
of choices, a table with `low` / `high` a range (of integers when both ends are). The choice
"default" leaves the key out, so the stage's (or the target profile's) default applies. Every
choice and both ends of every range are checked against the recipe before the first trial runs;
a bad one is an error naming its key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError

DEFAULT = "default"  # the choice that leaves a key out
SECTIONS = ("finetune", "prune", "distill", "quantize", "bench")
RANGE_KEYS = {"low", "high", "step", "log"}


@dataclass(frozen=True)
class Param:
    """One searched recipe key: a set of choices (JSON-encoded, so lists can be choices) or a
    numeric range."""

    key: str  # dotted recipe path, e.g. "prune.heads"
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    integer: bool = False

    def suggest(self, trial):
        """The value an Optuna trial draws for this key."""
        if self.choices:
            return json.loads(trial.suggest_categorical(self.key, list(self.choices)))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def decode(self, stored):
        """A value as Optuna stores it (a trial's params) -> the recipe value."""
        return json.loads(stored) if self.choices else stored

    def encode(self, value):
        """`value` as Optuna stores it for this key, or None when the key cannot take it."""
        if self.choices:
            stored = json.dumps(value, sort_keys=True)
            return stored if stored in self.choices else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not self.low <= value <= self.high:
            return None
        if self.step and abs((value - self.low) / self.step - round((value - self.low)
                                                                   / self.step)) > 1e-9:
            return None
        return int(value) if self.integer else float(value)

    def extremes(self) -> list:
        """The values that bound this key: every choice, or both ends of the range."""
        if self.choices:
            return [json.loads(c) for c in self.choices]
        return [int(v) if self.integer else v for v in (self.low, self.high)]

    def to_json(self) -> dict:
        if self.choices:
            return {"key": self.key, "choices": [json.loads(c) for c in self.choices]}
        return {"key": self.key, "low": self.low, "high": self.high, "step": self.step,
                "log": self.log, "integer": self.integer}


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    def suggest(self, trial) -> dict:
        return {p.key: p.suggest(trial) for p in self.params}

    def decode(self, stored: dict) -> dict:
        """A finished trial's params (as Optuna stored them) -> {recipe key: value}."""
        return {p.key: p.decode(stored[p.key]) for p in self.params if p.key in stored}

    def to_json(self) -> list[dict]:
        return [p.to_json() for p in self.params]

    def baseline(self, table: dict) -> dict | None:
        """The recipe's own setting of every searched key as Optuna params (a key the recipe
        leaves out is "default"); None when one of them is not in the space."""
        params = {}
        for param in self.params:
            value = _lookup(table, param.key)
            params[param.key] = param.encode(value)
            if params[param.key] is None:
                return None
        return params


def _lookup(table: dict, key: str):
    """The value at dotted `key` of a recipe table, or DEFAULT when it is not set."""
    for part in key.split("."):
        if not isinstance(table, dict) or part not in table:
            return DEFAULT
        table = table[part]
    return table


def apply(data: dict, values: dict) -> dict:
    """A copy of recipe table `data` with each dotted key set (or, for "default", removed)."""
    out = copy.deepcopy(data)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        table = out
        for part in parents:
            table = table.setdefault(part, {})
        if value == DEFAULT:
            table.pop(leaf, None)
        else:
            table[leaf] = value
    return out


def _leaves(table: dict, prefix: str = ""):
    """(dotted key, leaf) for every choice list / range table under `table`."""
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and not ({"low", "high"} <= set(value)):
            yield from _leaves(value, key + ".")
        else:
            yield key, value


def _range(where: str, key: str, value: dict) -> Param:
    unknown = sorted(set(value) - RANGE_KEYS)
    if unknown:
        raise UserError(f"{where}: key 'search.{key}.{unknown[0]}': a range has low, high, "
                        "step and log")
    numbers = [value[k] for k in ("low", "high", "step") if k in value]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
        raise UserError(f"{where}: key 'search.{key}': low, high and step must be numbers")
    low, high, step, log = value["low"], value["high"], value.get("step"), value.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: key 'search.{key}.log': expected true or false")
    if low > high or (step is not None and step <= 0) or (log and (low <= 0 or step)):
        raise UserError(f"{where}: key 'search.{key}': expected low <= high, a positive step, "
                        f"and log only with low > 0 and no step (got {value})")
    integer = all(isinstance(v, int) for v in numbers)
    return Param(key, low=low, high=high, step=step, log=log, integer=integer)


def _param(where: str, key: str, value) -> Param:
    if key.split(".")[0] not in SECTIONS or "." not in key:
        raise UserError(f"{where}: key 'search.{key}': expected a key of one of the stage "
                        f"tables ({', '.join(SECTIONS)}), e.g. search.prune.heads")
    if isinstance(value, dict):
        return _range(where, key, value)
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: key 'search.{key}': expected a non-empty list of choices or "
                        "a table {low, high}")
    choices = tuple(json.dumps(v, sort_keys=True) for v in value)
    if len(set(choices)) != len(choices):
        raise UserError(f"{where}: key 'search.{key}': a choice is listed twice")
    return Param(key, choices=choices)


def parse_space(path: Path, data: dict, parse) -> SearchSpace:
    """The recipe's [search] table, each bound checked by `parse(path, recipe table)` (the
    recipe parser), so a bad choice fails now with its key named, not in trial 17."""
    table = data.get("search")
    if not isinstance(table, dict) or not table:
        raise UserError(f"{path}: no [search] table; add one naming the keys to vary, e.g. "
                        "[search.prune] heads = [0.0, 0.25, 0.5]")
    params = tuple(_param(str(path), key, value) for key, value in _leaves(table))
    base = {k: v for k, v in data.items() if k != "search"}
    for param in params:
        for value in param.extremes():
            try:
                parse(path, apply(base, {param.key: value}))
            except UserError as err:
                message = str(err).removeprefix(f"{path}: ")
                raise UserError(f"{path}: key 'search.{param.key}': the choice "
                                f"{json.dumps(value)} gives a bad recipe: {message}") from None
    return SearchSpace(params)
