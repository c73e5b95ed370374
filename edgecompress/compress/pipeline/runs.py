"""`edgecompress run RECIPE`: one loop over the recipe's plan, into a resumable run directory.

    run.json                      the resolved recipe (what makes this run this run)
    stages/<step>/stage.json      every step's record: identity, config, input digests, output,
                                  metrics, seconds, versions
    stages/<stage>/checkpoint/    a training stage's model (finetune's lives in the teacher cache)
    teacher/eval.json             the fp32 teacher on the eval split (+ its predictions)
    artifacts/<target>/           artifact, tokenizer, manifest.json, eval.json, bench.json
    report.{json,md,csv,html}

A step is skipped when its record carries the identity it would have now (compress/identity.py): same
stage, config, input *content* and edgecompress version. Every file is written atomically, so a
run killed at any point (kill -9) resumes where it was. A directory holding a different run is
refused unless forced; a new run never touches another.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from edgecompress.compress.identity import (changed_inputs, content_digest, identity, is_done,
                                              profile_digest, stamp)
from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.pipeline import target_stages  # noqa: F401  (registers its stages)
from edgecompress.compress.pipeline.plan import STEP_OUTPUT, Step, plan_steps
from edgecompress.compress.pipeline.recipe import Recipe
from edgecompress.compress.pipeline.stages import Context, StageResult, get_stage
from edgecompress.errors import ParityError, UserError
from edgecompress.fsutil import atomic_write_json, check_replaceable, mark_output, read_json

STAGE_FILE = "stage.json"


def check_run_dir(out: Path, identity_: dict, force: bool) -> None:
    """Refuse a directory holding another run (unless `force`, which clears it)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    run_file = out / "run.json"
    if out.is_dir() and run_file.exists() and _read_or_none(run_file) == identity_:
        return  # the same run: resume it
    if not force:
        raise UserError(f"{out} already holds a different run; pass --force to replace it "
                        "or choose another --out")
    check_replaceable(out, force)
    shutil.rmtree(out)


def _read_or_none(path: Path):
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError):
        return None


def remove_stale_temps(out: Path) -> list[Path]:
    """Delete half-written files and directories a killed run left (`.<name>.<id>.tmp`)."""
    stale = sorted(p for p in out.rglob(".*.tmp")) + sorted(out.rglob(".*.partial.*"))
    for path in stale:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return stale


def tool_versions() -> dict:
    from importlib.metadata import version

    names = ("edgecompress", "torch", "transformers", "onnxruntime", "litert-torch",
             "ai-edge-litert")
    return {name: version(name) for name in names}


def _config_json(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def step_inputs(step: Step, outputs: dict[str, Path]) -> dict | None:
    """{name: path or built-in name}; None when an earlier step's output is not there yet."""
    resolved = {}
    for name, ref in step.inputs:
        if ref.startswith(STEP_OUTPUT):
            if ref[1:] not in outputs:
                return None
            resolved[name] = outputs[ref[1:]]
        else:
            resolved[name] = ref
    return resolved


def step_identity(step: Step, inputs: dict, data: DataRef) -> tuple[str, dict]:
    """(identity, input digests) of a step with its inputs resolved; the dataset's columns and
    label map count as part of its content."""
    digests = {name: content_digest(value) for name, value in inputs.items()}
    stage = get_stage(step.stage)
    if stage.reads_data:
        digests["dataset"] = content_digest(data.spec)
        if data.options():  # absent when unused, so earlier runs keep their identity
            digests["dataset options"] = json.dumps(data.options(), sort_keys=True)
    corpus = getattr(step.config, "vocab_corpus", None)
    if corpus:
        digests["vocab_corpus"] = content_digest(corpus)
    if stage.uses_profile:
        digests["profile"] = profile_digest(target_stages.target_profile(step.config))
    return identity(step.stage, _config_json(step.config), digests), digests


def run_step(step: Step, inputs: dict, recipe: Recipe, run_dir: Path, console, *,
             store: Path | None = None) -> StageResult:
    """Run one step unless its record shows it done with the same identity.

    With a `store` (a search's shared folder), the step writes to `store/<step>-<identity>/`
    instead of the run directory, so any run with the same step, config and input content
    reuses it; a lock keeps two processes from making the same step at once."""
    ident, digests = step_identity(step, inputs, recipe.data())
    if store is None:
        return _run_step(step, ident, digests, inputs, recipe, run_dir / "stages" / step.id,
                         console)
    from filelock import FileLock

    folder = store / f"{step.id}-{ident}"
    store.mkdir(parents=True, exist_ok=True)
    with FileLock(store / f".{step.id}-{ident}.lock"):
        return _run_step(dataclasses.replace(step, out_dir=folder), ident, digests, inputs,
                         recipe, folder, console)


def _run_step(step: Step, ident: str, digests: dict, inputs: dict, recipe: Recipe,
              record_dir: Path, console) -> StageResult:
    record_path = record_dir / STAGE_FILE
    done = is_done(record_path, ident)
    if done is not None:
        console.print(f"  {step.id}: cached", markup=False, highlight=False)
        return StageResult(step.id, step.stage, Path(done["output"]), done.get("metrics", {}),
                           done.get("seconds", 0.0), done.get("versions", {}), cached=True)
    why = changed_inputs(record_path, digests, _config_json(step.config))
    console.print(f"[bold]{step.id}[/bold]" + (f" (rerun: {', '.join(why)})" if why else ""))
    began = time.perf_counter()
    ctx = Context(recipe.data(), step.out_dir, ident, console)
    made = get_stage(step.stage).run(inputs, step.config, ctx)
    result = StageResult(step.id, step.stage, Path(made.output), made.metrics,
                         round(time.perf_counter() - began, 1), tool_versions())
    record = {"stage": step.stage, "step": step.id, "config": _config_json(step.config),
              "input": {k: str(v) for k, v in inputs.items()}, "output": str(result.output),
              "metrics": result.metrics, "seconds": result.seconds, "versions": result.versions}
    atomic_write_json(record_path, stamp(record, ident, digests))
    return result


def plan_lines(recipe: Recipe, run_dir: Path) -> list[str]:
    """What `run --dry-run` prints: every step, cached or to run (and why), per target."""
    lines = [f"recipe {recipe.name}: {recipe.model} on {recipe.dataset} -> {run_dir}"]
    outputs, pending = {}, {}
    for step in plan_steps(recipe, run_dir):
        state = _step_state(step, outputs, recipe, run_dir)
        if step.target is None:
            lines.append(f"  stage {step.id:<12} {state}")
        else:
            pending.setdefault(step.target, []).append((step.stage, state))
    for target, states in pending.items():
        todo = [stage for stage, state in states if state != "cached"]
        lines.append(f"  target {target:<12} " + ("cached" if not todo
                                                  else "to run: " + ", ".join(todo)))
    return lines


def _step_state(step: Step, outputs: dict, recipe: Recipe, run_dir: Path) -> str:
    inputs = step_inputs(step, outputs)
    if inputs is None:
        return "to run"
    record_path = run_dir / "stages" / step.id / STAGE_FILE
    ident, digests = step_identity(step, inputs, recipe.data())
    done = is_done(record_path, ident)
    if done is None:
        why = changed_inputs(record_path, digests, _config_json(step.config))
        return "to run" + (f" ({', '.join(why)})" if why else "")
    outputs[step.id] = Path(done["output"])
    return "cached"


REFUSED = "refused.json"


def _refuse_target(step: Step, err: ParityError, run_dir: Path, console) -> None:
    """An artifact that misses its gate is not kept; the run goes on with the other targets
    and `artifacts/<target>/refused.json` says why (the report lists it)."""
    folder = run_dir / "artifacts" / step.target
    if folder.exists():
        shutil.rmtree(folder)
    atomic_write_json(folder / REFUSED, {"target": step.target, "step": step.id,
                                         "reason": str(err), "diffs": err.diffs})
    console.print(f"  {step.target}: refused by the parity gate — {err}", markup=False,
                  highlight=False)


def run_recipe(recipe: Recipe, run_dir: Path, console, *, force: bool = False) -> Path:
    """Run every step of `recipe` into `run_dir`; returns report.md's path."""
    from edgecompress.reports import write_report

    steps = plan_steps(recipe, run_dir)  # bad targets and configs fail before anything is written
    check_run_dir(run_dir, recipe.identity(), force)
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_output(run_dir, "run")  # --force may replace this directory later, and only such
    remove_stale_temps(run_dir)
    atomic_write_json(run_dir / "run.json", recipe.identity())
    began = time.perf_counter()
    outputs: dict[str, Path] = {}
    refused: set[str] = set()
    for step in steps:
        if step.target in refused:
            continue
        try:
            outputs[step.id] = run_step(step, step_inputs(step, outputs), recipe, run_dir,
                                        console).output
        except ParityError as err:
            if step.target is None:
                raise
            refused.add(step.target)
            _refuse_target(step, err, run_dir, console)
    paths = write_report(run_dir)
    console.print(f"finished in {time.perf_counter() - began:.0f} s")
    return next(p for p in paths if p.suffix == ".md")
