"""The training stages a recipe can chain, one plain dict filled by a decorator.

Each stage is `(recipe, source, teacher, stage_dir, settings, console) -> (checkpoint, metrics)`:
it reads the checkpoint `source`, writes its own checkpoint (atomically, resumable) and returns
where it is and what it measured. Quantization is not here: it happens per target at export.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from edgecompress.fsutil import cache_root

StageFn = Callable[..., tuple[Path, dict]]
STAGES: dict[str, StageFn] = {}


def stage(name: str):
    def register(fn: StageFn) -> StageFn:
        STAGES[name] = fn
        return fn
    return register


def get_stage(name: str) -> StageFn:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r} (known: {', '.join(sorted(STAGES))})")
    return STAGES[name]


def _tuples(settings: dict) -> dict:
    """TOML lists -> tuples (frozen configs), nested lists included (layer maps)."""
    convert = lambda v: tuple(convert(x) for x in v) if isinstance(v, list) else v  # noqa: E731
    return {k: convert(v) for k, v in settings.items()}


def _finetune_config(settings: dict):
    from edgecompress.compress.train import FinetuneConfig

    return FinetuneConfig(**_tuples(settings))


def _prune_config(settings: dict):
    from edgecompress.compress.prune.config import PruneConfig

    return PruneConfig(**_tuples(settings))


DISTILL_EXTRA = ("student", "train_size", "qat_target", "qat_scheme")


def _check_distill_extras(settings: dict) -> None:
    """Catch mistakes in the recipe-only keys now, not after hours of earlier stages."""
    student = settings.get("student", "pruned")
    if not isinstance(student, str) or not (student == "pruned" or ":" in student
                                            or Path(student).is_dir()):
        raise ValueError(f"student: expected 'pruned', 'layers:1,3,5', 'fresh:...' or a "
                         f"checkpoint directory, got {student!r}")
    if student.startswith("layers:"):
        parts = student[len("layers:"):].split(",")
        if not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"student: expected comma-separated layer numbers, got {student!r}")
    size = settings.get("train_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"train_size: expected a positive integer, got {size!r}")
    if settings.get("qat_target") is not None:
        from edgecompress.compress.distill.qat import qat_config_for
        from edgecompress.targets import load_profile

        qat_config_for(load_profile(settings["qat_target"]), settings.get("qat_scheme"))


def _distill_config(settings: dict):
    from edgecompress.compress.distill.config import DistillConfig

    _check_distill_extras(settings)
    values = {k: v for k, v in _tuples(settings).items() if k not in DISTILL_EXTRA}
    if isinstance(settings.get("train"), dict):
        values["train"] = _finetune_config(settings["train"])
    return DistillConfig(**values)


CONFIGS = {"finetune": _finetune_config, "prune": _prune_config, "distill": _distill_config}


def config_keys(name: str) -> set[str]:
    """The keys a recipe's [name] table may hold: the stage config's fields (+ extras)."""
    from dataclasses import fields

    config = CONFIGS[name]({})
    extra = set(DISTILL_EXTRA) if name == "distill" else set()
    return {f.name for f in fields(config)} | extra


def build_config(name: str, settings: dict):
    """The stage's frozen config from recipe settings; raises TypeError / ValueError."""
    return CONFIGS[name](settings)


@stage("finetune")
def finetune_stage(recipe, source, teacher, stage_dir: Path, settings: dict, console):
    """Fine-tune into the shared teacher cache, keyed by model, data and config: a second run of
    the same recipe (or another recipe with the same teacher) reuses it."""
    from edgecompress.compress.teacher import FinetuneRequest, run_finetune

    config = _finetune_config(settings)
    key = hashlib.sha256(json.dumps([str(source), recipe.dataset, settings],
                                    sort_keys=True).encode()).hexdigest()[:12]
    out = cache_root() / "teachers" / f"{Path(str(source)).name}-{Path(recipe.dataset).stem}-{key}"
    manifest = run_finetune(FinetuneRequest(model=str(source), dataset=recipe.dataset, out=out,
                                            overrides=config, force=True), console)
    return out, {"dev": manifest.get("dev"), "train_seconds": manifest.get("seconds")}


@stage("prune")
def prune_stage(recipe, source, teacher, stage_dir: Path, settings: dict, console):
    from edgecompress.compress.prune import PruneRequest, run_prune

    out = stage_dir / "checkpoint"
    config = _prune_config(settings)
    manifest = run_prune(PruneRequest(model=str(source), out=out, config=config,
                                      dataset=recipe.dataset, evaluate=True, force=True))
    keep = ("params_before", "params_after", "accuracy", "speedup_gate", "removed")
    return out, {k: manifest[k] for k in keep if k in manifest}


@stage("vocab")
def vocab_stage(recipe, source, teacher, stage_dir: Path, settings: dict, console):
    """Vocabulary pruning after distillation (see runs.stage_plan): the prune stage, vocab only."""
    return prune_stage(recipe, source, teacher, stage_dir, settings, console)


@stage("distill")
def distill_stage(recipe, source, teacher, stage_dir: Path, settings: dict, console):
    """Distill the teacher (the fine-tuned model, or the recipe's model when it has no finetune
    stage) into `source` (the pruned model), or into the student spec the recipe names
    (`student = "layers:1,3,5"`)."""
    from edgecompress.compress.distill import DistillRequest, run_distill

    student = settings.get("student", "pruned")
    student = str(source) if student == "pruned" else student
    out = stage_dir / "checkpoint"
    manifest = run_distill(DistillRequest(teacher=str(teacher), student=student,
                                          dataset=recipe.dataset, out=out,
                                          config=_distill_config(settings),
                                          train_size=settings.get("train_size"),
                                          qat_target=settings.get("qat_target"),
                                          qat_scheme=settings.get("qat_scheme"), force=True),
                           console)
    keep = ("test", "steps", "stopped", "wall_seconds", "student")
    return out, {k: manifest[k] for k in keep if k in manifest}
