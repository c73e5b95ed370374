"""The stage table: every step a run can take, one plain dict filled by a decorator.

Every stage is `(inputs, config, ctx) -> StageOutput`: `inputs` maps names to the paths (or
built-in names) it reads, `config` is the stage's frozen config, `ctx` says where it runs. The run
loop (runs.py) decides with one identity and one `is_done` whether to call it (once: a stage
only makes, it does not ask again), times it and records a `StageResult`. Target stages (export,
eval, bench, verify) live in target_stages.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgecompress.compress.config import FieldError
from edgecompress.compress.data.dataref import DataRef
from edgecompress.fsutil import cache_root
from edgecompress.rundir import CHECKPOINT_DIR


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
    """Where a stage runs: the dataset (with the recipe's columns and label map), its own
    folder, its identity, and a console."""

    data: DataRef
    stage_dir: Path
    ident: str
    console: object = None


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Mapping, object, Context], StageOutput]
    reads_data: bool  # the dataset's content is part of the stage's identity
    uses_profile: bool = False  # so is the target profile's
    # config -> {name: digest} of anything else the stage reads (verify: the emulation)
    reads: Callable[[object], dict[str, str]] | None = None


STAGES: dict[str, Stage] = {}


def stage(name: str, *, reads_data: bool, uses_profile: bool = False, reads=None):
    def register(fn):
        STAGES[name] = Stage(name, fn, reads_data, uses_profile, reads)
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
    seeds: int = 1  # train this many seeds (train.seed, +1, ...); keep the best on dev

    def __post_init__(self) -> None:
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise FieldError("seeds", f"expected a positive integer, got {self.seeds!r}")


@dataclass(frozen=True)
class FinetuneStageConfig:
    """The recipe's [finetune] table: the training config plus how many seeds to train."""

    train: object  # FinetuneConfig
    seeds: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise FieldError("seeds", f"expected a positive integer, got {self.seeds!r}")


def best_of_seeds(runs: list[dict]) -> dict:
    """Pick the run with the best *dev* accuracy (never test) and summarise the spread.

    `runs` are [{"seed", "output", "dev", "test"}] with accuracies as fractions (test may be
    None). Returns {"chosen": run, "seeds": [...], "test_mean", "test_std", "dev_mean",
    "dev_std"}; ties go to the lowest seed.
    """
    import statistics

    chosen = max(runs, key=lambda r: (r["dev"] if r["dev"] is not None else -1.0, -r["seed"]))

    def spread(key: str) -> tuple[float | None, float | None]:
        values = [r[key] for r in runs if r[key] is not None]
        if not values:
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    (test_mean, test_std), (dev_mean, dev_std) = spread("test"), spread("dev")
    return {"chosen": chosen, "seeds": [{k: v for k, v in r.items() if k != "output"}
                                        for r in runs],
            "test_mean": test_mean, "test_std": test_std, "dev_mean": dev_mean,
            "dev_std": dev_std}


@stage("finetune", reads_data=True)
def finetune_stage(inputs, config, ctx: Context) -> StageOutput:
    """Fine-tune into the shared teacher cache, keyed by the step's identity (model content, data
    content, config): a second run of the same recipe, or another recipe with the same teacher,
    reuses it."""
    from edgecompress.compress.finetune.stage import FinetuneRequest, run_finetune

    model = inputs["model"]
    runs = []
    for k in range(config.seeds):
        train = dataclasses.replace(config.train, seed=config.train.seed + k)
        suffix = "" if config.seeds == 1 else f"-seed{train.seed}"
        out = cache_root() / "teachers" / f"{Path(str(model)).name}-{ctx.ident[:12]}{suffix}"
        manifest = run_finetune(FinetuneRequest(model=str(model), data=ctx.data, out=out,
                                                config=train, force=True), ctx.console)
        runs.append({"seed": train.seed, "output": out, "test": None,
                     "dev": (manifest.get("dev") or {}).get("accuracy"),
                     "train_seconds": manifest.get("seconds")})
    best = best_of_seeds(runs)
    chosen = best["chosen"]
    metrics = {"dev": {"accuracy": chosen["dev"]}, "train_seconds": chosen["train_seconds"],
               "split_sizes": manifest.get("split_sizes")}
    if config.seeds > 1:
        metrics["seeds"] = {k: v for k, v in best.items() if k != "chosen"}
        metrics["chosen_seed"] = chosen["seed"]
    return StageOutput(chosen["output"], metrics)


@stage("prune", reads_data=True)
def prune_stage(inputs, config, ctx: Context) -> StageOutput:
    from edgecompress.compress.prune import PruneRequest
    from edgecompress.compress.prune.stage import make_prune

    out = ctx.stage_dir / CHECKPOINT_DIR
    manifest = make_prune(PruneRequest(model=str(inputs["model"]), out=out, config=config,
                                       data=ctx.data, evaluate=True, force=True))
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
    from edgecompress.compress.distill import DistillRequest
    from edgecompress.compress.distill.stage import make_distill

    student = str(inputs["student"]) if config.student == "pruned" else config.student
    runs, manifests = [], {}
    for k in range(config.seeds):
        train = dataclasses.replace(config.distill.train, seed=config.distill.train.seed + k)
        out = ctx.stage_dir / (CHECKPOINT_DIR if config.seeds == 1
                               else f"{CHECKPOINT_DIR}-seed{train.seed}")
        request = DistillRequest(teacher=str(inputs["teacher"]), student=student,
                                 data=ctx.data, out=out,
                                 config=dataclasses.replace(config.distill, train=train),
                                 train_size=config.train_size, qat_target=config.qat_target,
                                 qat_scheme=config.qat_scheme, force=True)
        manifests[train.seed] = manifest = make_distill(request, ctx.console)
        test = (manifest.get("test") or {}).get("student", {}).get("accuracy")
        runs.append({"seed": train.seed, "output": out, "test": test,
                     "dev": manifest.get("best_dev_accuracy")})
    best = best_of_seeds(runs)
    chosen = best["chosen"]
    keep = ("test", "steps", "stopped", "wall_seconds", "student")
    metrics = {k: manifests[chosen["seed"]][k] for k in keep if k in manifests[chosen["seed"]]}
    if config.seeds > 1:
        metrics["seeds"] = {k: v for k, v in best.items() if k != "chosen"}
        metrics["chosen_seed"] = chosen["seed"]
    return StageOutput(chosen["output"], metrics)
