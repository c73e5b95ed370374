"""Recipes: one TOML file naming the model, the data, the stages and the targets.

    name = "demo"
    model = "minilm-l6"            # built-in name or checkpoint dir (relative to this file)
    dataset = "rt-polarity"        # registry name or CSV/JSONL path (relative to this file)
    targets = ["x86-cpu", "rpi5"]  # names or profile .toml paths

    [finetune]   # optional: train a classifier first (FinetuneConfig keys)
    [prune]      # optional: PruneConfig keys (heads, ffn, layers, keep_layers, vocab_corpus, ...)
    [distill]    # optional: DistillConfig keys + student ("pruned" or a spec like "layers:1,3,5"),
                 # train_size, qat_target / qat_scheme (train with a target's fake quantization)
    [quantize]   # optional: schemes = {target = scheme}, max_drop = points | {target = points}
    [bench]      # optional: runs, warmup

Parsed once, here, into frozen dataclasses; every message names the file and the key. Stage
settings are validated by building the stage's own config object, so a recipe accepts exactly the
keys the stage has.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError

TOP_KEYS = {"name", "model", "dataset", "targets", "description", "finetune", "prune",
            "distill", "quantize", "bench"}
STAGE_ORDER = ("finetune", "prune", "distill")  # quantization happens at export, per target
QUANTIZE_KEYS = {"schemes", "max_drop"}
BENCH_KEYS = {"runs", "warmup"}


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    dataset: str
    targets: tuple[str, ...]
    stages: tuple[tuple[str, str], ...]  # (stage, settings as canonical JSON), in run order
    schemes: tuple[tuple[str, str], ...] = ()  # (target, scheme) overrides
    max_drop: tuple[tuple[str, float], ...] = ()  # (target or "*", accuracy points)
    bench_runs: int = 100
    bench_warmup: int = 10
    source: str = ""

    def settings(self, stage: str) -> dict | None:
        for name, settings in self.stages:
            if name == stage:
                return json.loads(settings)
        return None

    def scheme_for(self, target: str) -> str | None:
        return dict(self.schemes).get(target)

    def max_drop_for(self, target: str) -> float | None:
        """Allowed accuracy drop (points) for the fallback loop of `target`; None: no fallback."""
        drops = dict(self.max_drop)
        return drops.get(target, drops.get("*"))

    def identity(self) -> dict:
        """What makes two runs the same run (the source path does not)."""
        return {"kind": "edgecompress-run", "recipe": self.name, "model": self.model,
                "dataset": self.dataset, "targets": list(self.targets),
                "stages": [[name, json.loads(s)] for name, s in self.stages],
                "schemes": dict(self.schemes), "max_drop": dict(self.max_drop)}

def _err(path: Path, key: str, expected: str) -> UserError:
    return UserError(f"{path}: key '{key}': expected {expected}")


def _resolve(path: Path, value: str) -> str:
    """Paths in a recipe are relative to the recipe file; names stay names."""
    candidate = path.parent / value
    return str(candidate.resolve()) if ("/" in value or candidate.exists()) else value


def _string(path: Path, data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _err(path, key, "a non-empty string")
    return value


def _check_keys(path: Path, section: str, data: dict, known: set[str]) -> None:
    if not isinstance(data, dict):
        raise _err(path, section, "a table")
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown key '{section}.{unknown[0]}' "
                        f"(known: {', '.join(sorted(known))})")


def _stage_config(path: Path, stage: str, settings: dict) -> dict:
    """Validate `settings` by building the stage's config; returns them unchanged."""
    from edgecompress.compress.stages import build_config, config_keys

    _check_keys(path, stage, settings, config_keys(stage))
    try:
        build_config(stage, settings)
    except (TypeError, ValueError, IndexError) as err:  # UserError is a ValueError too
        raise UserError(f"{path}: [{stage}] {err}") from None
    return settings


def _targets(path: Path, data: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(targets as given, resolved against the recipe's folder; their profile names)."""
    from edgecompress.targets import load_profile

    targets = data.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise _err(path, "targets", "a non-empty list of target names")
    resolved = tuple(_resolve(path, t) for t in targets)
    names = []
    for target in resolved:
        try:
            names.append(load_profile(target).name)
        except UserError as err:
            raise UserError(f"{path}: key 'targets': {err}") from None
    return resolved, tuple(names)


def _quantize(path: Path, data: dict, targets: tuple[str, ...]):
    """(scheme overrides, max_drop per target); keys are the targets' profile names."""
    section = data.get("quantize") or {}
    _check_keys(path, "quantize", section, QUANTIZE_KEYS)
    schemes = section.get("schemes") or {}
    if not isinstance(schemes, dict) or not all(isinstance(v, str) for v in schemes.values()):
        raise _err(path, "quantize.schemes", "a table of target = scheme")
    unknown = sorted(set(schemes) - set(targets))
    if unknown:
        raise UserError(f"{path}: key 'quantize.schemes.{unknown[0]}': not one of the recipe's "
                        f"targets ({', '.join(targets)})")
    max_drop = section.get("max_drop")
    drops = max_drop if isinstance(max_drop, dict) else ({} if max_drop is None else {"*": max_drop})
    for target, value in drops.items():
        if target != "*" and target not in targets:
            raise UserError(f"{path}: key 'quantize.max_drop.{target}': not one of the recipe's "
                            f"targets ({', '.join(targets)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _err(path, "quantize.max_drop", "a number of accuracy points >= 0, or a "
                                                  "table of target = points")
    max_drop = tuple(sorted((t, float(v)) for t, v in drops.items()))
    return tuple(sorted(schemes.items())), max_drop


def _bench(path: Path, data: dict) -> tuple[int, int]:
    section = data.get("bench") or {}
    _check_keys(path, "bench", section, BENCH_KEYS)
    runs, warmup = section.get("runs", 100), section.get("warmup", 10)
    if not isinstance(runs, int) or runs < 1:
        raise _err(path, "bench.runs", "a positive integer")
    if not isinstance(warmup, int) or warmup < 0:
        raise _err(path, "bench.warmup", "a non-negative integer")
    return runs, warmup


def load_recipe(path: Path) -> Recipe:
    """Parse and validate a recipe file; raises UserError naming the file and the key."""
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    _check_keys(path, "recipe", data, TOP_KEYS)
    targets, names = _targets(path, data)
    stages = tuple((stage, json.dumps(_stage_config(path, stage, data[stage]), sort_keys=True))
                   for stage in STAGE_ORDER if stage in data)
    schemes, max_drop = _quantize(path, data, names)
    runs, warmup = _bench(path, data)
    return Recipe(name=data.get("name") or path.stem, model=_resolve(path, _string(path, data, "model")),
                  dataset=_resolve(path, _string(path, data, "dataset")), targets=targets,
                  stages=stages, schemes=schemes, max_drop=max_drop, bench_runs=runs,
                  bench_warmup=warmup, source=str(path))
