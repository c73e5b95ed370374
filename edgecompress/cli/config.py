"""`--config FILE.toml` for the stage commands: the same keys as the recipe's table for that stage
(a file may hold just the keys, or a `[finetune]` / `[prune]` / `[distill]` / `[quantize]`
table), validated by the same frozen config. A flag given on the command line (one that differs
from its default) overrides the file's value.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from edgecompress.errors import UserError

# CLI option -> key in the stage's table, where the two differ ("." = a sub-table)
FLAG_KEYS = {
    "finetune": {"lr": "learning_rate"},
    "distill": {"epochs": "train.epochs", "batch_size": "train.batch_size",
                "lr": "train.learning_rate", "max_length": "train.max_length",
                "max_steps": "train.max_steps", "seed": "train.seed"},
    "quantize": {"calib_samples": "calibration_samples", "calib_method": "calibration_method"},
}


def read_table(path: Path, stage: str) -> dict:
    """The stage's table from a TOML file; UserError names the file when it is not one."""
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


def explicit_options(command, values: dict) -> dict:
    """The options of `command` whose values differ from their declared defaults."""
    parameters = inspect.signature(command).parameters
    out = {}
    for name, value in values.items():
        declared = parameters[name].default
        if value != getattr(declared, "default", declared):
            out[name] = value
    return out


def merged_settings(path: Path | None, stage: str, flags: dict) -> dict:
    """The file's table (if any) with the explicit flags written over it as table keys."""
    settings = read_table(path, stage) if path else {}
    for name, value in flags.items():
        key = FLAG_KEYS.get(stage, {}).get(name, name)
        if "." in key:
            table, sub = key.split(".", 1)
            settings[table] = {**settings.get(table, {}), sub: value}
        else:
            settings[key] = value
    return settings


def stage_config_from(path: Path | None, stage: str, flags: dict):
    """The stage's frozen config from `--config` plus flags; messages name the key and file."""
    from edgecompress.compress.pipeline.recipe import stage_config

    where = f"{path} (with the command's flags)" if path else "command line"
    return stage_config(where, stage, merged_settings(path, stage, flags))


REQUEST_OPTIONS = ("teacher", "student", "dataset", "out", "unlabeled", "force",
                   "dev_similarity")


def distill_request_from(path: Path, explicit: dict, **options):
    """`distill --config FILE`: the file's [distill] keys (as in a recipe), explicit flags over
    them; raises UserError naming the file and the key."""
    from edgecompress.compress.distill.config import parse_layer_map
    from edgecompress.compress.distill.stage import DistillRequest

    flags = {k: v for k, v in explicit.items() if k not in REQUEST_OPTIONS}
    if "layer_map" in flags:
        try:
            flags["layer_map"] = [list(p) for p in parse_layer_map(flags["layer_map"])]
        except ValueError as err:
            raise UserError(str(err)) from None
    stage = stage_config_from(path, "distill", flags)
    return DistillRequest(teacher=options["teacher"], student=options["student"],
                          dataset=options["dataset"], out=options["out"], config=stage.distill,
                          unlabeled=options.get("unlabeled"), qat_target=stage.qat_target,
                          qat_scheme=stage.qat_scheme, train_size=stage.train_size,
                          force=options.get("force", False),
                          dev_similarity=options.get("dev_similarity"))
