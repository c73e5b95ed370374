"""The stage table: every step a run can take, one plain dict filled by a decorator.

Every stage is `(inputs, config, ctx) -> StageOutput`: `inputs` maps names to the paths (or
built-in names) it reads, `config` is the stage's frozen config, `ctx` says where it runs. The run
loop (runs.py) decides with one identity and one `is_done` whether to call it, times it and
records a `StageResult`. Target stages (export, eval, bench) live in target_stages.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgecompress.fsutil import cache_root


@dataclass(frozen=True)
class StageOutput:
    """What a stage made: its output path and what it measured."""

    output: Path
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StageResult:
    """One finished (or cached) step, as the run records it in stages/<step>/stage.json."""

    step: str
    stage: str
    output: Path
    metrics: dict
    seconds: float
    versions: dict
    cached: bool = False


@dataclass(frozen=True)
class Context:
    """Where a stage runs: the dataset, its own folder, its identity, and a console."""

    dataset: str
    stage_dir: Path
    ident: str
    console: object = None


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Mapping, object, Context], StageOutput]
    reads_data: bool  # the dataset's content is part of the stage's identity
    uses_profile: bool = False  # so is the target profile's


STAGES: dict[str, Stage] = {}


def stage(name: str, *, reads_data: bool, uses_profile: bool = False):
    def register(fn):
        STAGES[name] = Stage(name, fn, reads_data, uses_profile)
        return fn
    return register


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r} (known: {', '.join(sorted(STAGES))})")
    return STAGES[name]


@dataclass(frozen=True)
class DistillStageConfig:
    """The recipe's [distill] table: the losses and training (DistillConfig) plus the student."""

    distill: object  # DistillConfig
    student: str = "pruned"  # "pruned" (the previous stage's model), "layers:..", "fresh:.."
    train_size: int | None = None
    qat_target: str | None = None
    qat_scheme: str | None = None


@stage("finetune", reads_data=True)
def finetune_stage(inputs, config, ctx: Context) -> StageOutput:
    """Fine-tune into the shared teacher cache, keyed by the step's identity (model content, data
    content, config): a second run of the same recipe, or another recipe with the same teacher,
    reuses it."""
    from edgecompress.compress.core.finetune import FinetuneRequest, run_finetune

    model = inputs["model"]
    out = cache_root() / "teachers" / f"{Path(str(model)).name}-{ctx.ident[:12]}"
    manifest = run_finetune(FinetuneRequest(model=str(model), dataset=ctx.dataset, out=out,
                                            overrides=config, force=True), ctx.console)
    return StageOutput(out, {"dev": manifest.get("dev"), "train_seconds": manifest.get("seconds"),
                             "split_sizes": manifest.get("split_sizes")})


@stage("prune", reads_data=True)
def prune_stage(inputs, config, ctx: Context) -> StageOutput:
    from edgecompress.compress.prune import PruneRequest, run_prune

    out = ctx.stage_dir / "checkpoint"
    manifest = run_prune(PruneRequest(model=str(inputs["model"]), out=out, config=config,
                                      dataset=ctx.dataset, evaluate=True, force=True))
    keep = ("params_before", "params_after", "accuracy", "speedup_gate", "removed")
    return StageOutput(out, {k: manifest[k] for k in keep if k in manifest})


@stage("vocab", reads_data=True)
def vocab_stage(inputs, config, ctx: Context) -> StageOutput:
    """Vocabulary pruning after distillation (see plan.py): the prune stage, vocabulary only."""
    return prune_stage(inputs, config, ctx)


@stage("distill", reads_data=True)
def distill_stage(inputs, config: DistillStageConfig, ctx: Context) -> StageOutput:
    """Distill the teacher (the fine-tuned model, or the recipe's model) into the previous stage's
    model, or into the student spec the recipe names (`student = "layers:1,3,5"`)."""
    from edgecompress.compress.distill import DistillRequest, run_distill

    student = str(inputs["student"]) if config.student == "pruned" else config.student
    out = ctx.stage_dir / "checkpoint"
    manifest = run_distill(DistillRequest(teacher=str(inputs["teacher"]), student=student,
                                          dataset=ctx.dataset, out=out, config=config.distill,
                                          train_size=config.train_size,
                                          qat_target=config.qat_target,
                                          qat_scheme=config.qat_scheme, force=True), ctx.console)
    keep = ("test", "steps", "stopped", "wall_seconds", "student")
    return StageOutput(out, {k: manifest[k] for k in keep if k in manifest})
