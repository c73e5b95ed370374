"""`edgecompress run RECIPE`: one loop over the recipe's plan, into a run directory that is a
store of steps keyed by identity (the layout: edgecompress/rundir.py).

A step is skipped when its record carries the identity it would have now (compress/identity.py):
same stage, config, input *content* and edgecompress version. `step_state` is that decision,
made once per step, for `run` and `run --dry-run` alike; the stage itself then only makes.
Rerunning an edited recipe into the same folder reuses every step whose identity holds, reruns
the rest (saying which input or config changed) and removes the steps and targets the recipe no
longer plans, so the report shows the current recipe only. Every file is written atomically, so
a run killed at any point (kill -9) resumes where it was. A folder edgecompress did not make
for a run is refused (or, with `force`, replaced when edgecompress made it).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.identity import (
    changed_inputs,
    content_digest,
    identity,
    is_done,
    profile_digest,
    stamp,
)
from edgecompress.compress.pipeline import (
    llm_stages,  # noqa: F401 (registers the LLM stages)
    target_stages,  # (importing it registers its stages)
)
from edgecompress.compress.pipeline.plan import STEP_OUTPUT, Step, plan_steps
from edgecompress.compress.pipeline.recipe import Recipe
from edgecompress.compress.pipeline.stages import Context, StageResult, get_stage
from edgecompress.errors import ParityError, UserError
from edgecompress.fsutil import (
    LOCK_FILE,
    OUTPUT_MARKER,
    atomic_write_json,
    check_replaceable,
    held_lock,
    is_marked_output,
    mark_output,
    read_json,
)
from edgecompress.rundir import RUN_ENTRIES, STAGE_FILE, RunDir

RUN_KIND = "run"  # the kind mark_output records on a run folder


def check_run_dir(out: Path, force: bool) -> None:
    """Raise UserError unless `out` can take a run (nothing is changed): missing, empty, a
    folder edgecompress made for a run, or with `force` a folder edgecompress made."""
    if not _entries(out):
        if not out.is_dir():  # a file (or a path under one) is refused; missing is fine
            check_replaceable(out, force)
        return
    if _marked_kind(out) == RUN_KIND:
        return
    if not force:
        raise UserError(f"{out} holds something other than an edgecompress run; pass --force "
                        "to replace it or choose another --out")
    check_replaceable(out, force)  # only a folder edgecompress marked gets past this


def open_run_dir(out: Path, force: bool) -> None:
    """Make `out` ready for a run (check_run_dir first). A folder edgecompress made for a run
    is reused as a store of steps (with `force`, its run files are removed first: anything
    else in it is kept); another folder edgecompress made is emptied with `force`. The run's
    lock file (held by this process) stays."""
    check_run_dir(out, force)
    if not force or not _entries(out):
        return
    doomed = ([out / name for name in RUN_ENTRIES] if _marked_kind(out) == RUN_KIND
              else _entries(out))
    for path in doomed:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _entries(out: Path) -> list[Path]:
    """What `out` holds besides a run's lock file ([] for a missing folder or a file)."""
    if not out.is_dir():
        return []
    return [path for path in out.iterdir() if path.name != LOCK_FILE]


def _marked_kind(out: Path) -> str | None:
    if not is_marked_output(out):
        return None
    return _read_or_none(out / OUTPUT_MARKER).get("kind")


def _read_or_none(path: Path):
    try:
        return read_json(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def remove_stale_steps(run_dir: Path, steps: list[Step]) -> list[Path]:
    """Delete the step and artifact folders an older recipe left that this plan does not make
    (an edgecompress-made run folder only), so reports read the current recipe's steps only."""
    run = RunDir(run_dir)
    stale = run.stale_entries({s.id for s in steps}, {s.target for s in steps if s.target})
    for path in stale:
        shutil.rmtree(path)
        if path.parent == run.stages and path.name.startswith("verify-"):
            # [verify] turned off: the record that step wrote goes with it (one that a later
            # `edgecompress verify` wrote has no step and stays)
            run.verify_file(path.name.removeprefix("verify-")).unlink(missing_ok=True)
    return stale


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


# Config fields added after runs were recorded: left out of a step's recorded config while
# unset, so a folder made before them keeps every step's identity (the demo's prune and vocab
# steps are not redone for a field they do not use).
OMITTED_WHEN_UNSET = ("vocab_corpus_text_col",)


def _config_json(config) -> dict:
    data = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return {k: v for k, v in data.items() if not (k in OMITTED_WHEN_UNSET and v is None)}


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
    if stage.reads is not None:
        digests.update(stage.reads(step.config))
    return identity(step.stage, _config_json(step.config), digests), digests


@dataclass(frozen=True)
class StepState:
    """The one "done?" decision for a step: its identity, input digests, and the record that
    proves it done (None: to run, `why` says what changed since the recorded run, if any)."""

    ident: str
    digests: dict
    record: dict | None
    why: tuple[str, ...]

    def words(self) -> str:
        if self.record is not None:
            return "cached"
        return "to run" + (f" ({', '.join(self.why)})" if self.why else "")


def step_state(step: Step, inputs: dict, data: DataRef, record_path: Path) -> StepState:
    """Whether `step` (inputs resolved) is done according to the record at `record_path`."""
    ident, digests = step_identity(step, inputs, data)
    record = is_done(record_path, ident)
    why = () if record is not None else tuple(changed_inputs(record_path, digests,
                                                             _config_json(step.config)))
    return StepState(ident, digests, record, why)


def run_step(step: Step, inputs: dict, recipe: Recipe, run_dir: Path, console, *,
             store: Path | None = None) -> StageResult:
    """Run one step unless its record shows it done with the same identity.

    With a `store` (a search's shared folder), the step writes to `store/<step>-<identity>/`
    instead of the run directory, so any run with the same step, config and input content
    reuses it; a lock keeps two processes from making the same step at once."""
    if store is None:
        return _run_step(step, inputs, recipe, RunDir(run_dir).stage_dir(step.id), console)
    from filelock import FileLock

    ident, _ = step_identity(step, inputs, recipe.data())
    folder = store / f"{step.id}-{ident}"
    store.mkdir(parents=True, exist_ok=True)
    with FileLock(store / f".{step.id}-{ident}.lock"):
        return _run_step(dataclasses.replace(step, out_dir=folder), inputs, recipe, folder,
                         console)


def _run_step(step: Step, inputs: dict, recipe: Recipe, record_dir: Path,
              console) -> StageResult:
    record_path = record_dir / STAGE_FILE
    state = step_state(step, inputs, recipe.data(), record_path)
    if state.record is not None:
        done = state.record
        console.print(f"  {step.id}: cached", markup=False, highlight=False)
        return StageResult(step.id, step.stage, Path(done["output"]), done.get("metrics", {}),
                           done.get("seconds", 0.0), done.get("versions", {}), cached=True)
    console.print(f"[bold]{step.id}[/bold]" + (f" (rerun: {', '.join(state.why)})"
                                               if state.why else ""))
    began = time.perf_counter()
    ctx = Context(recipe.data(), step.out_dir, state.ident, console)
    made = get_stage(step.stage).run(inputs, step.config, ctx)
    result = StageResult(step.id, step.stage, Path(made.output), made.metrics,
                         round(time.perf_counter() - began, 1), tool_versions())
    record = {"stage": step.stage, "step": step.id, "config": _config_json(step.config),
              "input": {k: str(v) for k, v in inputs.items()}, "output": str(result.output),
              "metrics": result.metrics, "seconds": result.seconds, "versions": result.versions}
    atomic_write_json(record_path, stamp(record, state.ident, state.digests))
    return result


def plan_states(recipe: Recipe, run_dir: Path) -> list[tuple[Step, str]]:
    """(step, "cached" / "to run (why)") for every step of the plan, as `run` will decide them
    (a step whose input an earlier step remakes is to run: its input's content is not known yet)."""
    outputs, states = {}, []
    for step in plan_steps(recipe, run_dir):
        inputs = step_inputs(step, outputs)
        if inputs is None:
            remade = [ref[1:] for _, ref in step.inputs
                      if ref.startswith(STEP_OUTPUT) and ref[1:] not in outputs]
            states.append((step, f"to run (after {', '.join(remade)})"))
            continue
        state = step_state(step, inputs, recipe.data(), RunDir(run_dir).stage_file(step.id))
        if state.record is not None:
            outputs[step.id] = Path(state.record["output"])
        states.append((step, state.words()))
    return states


def plan_lines(recipe: Recipe, run_dir: Path) -> list[str]:
    """What `run --dry-run` prints: every step, cached or to run (and why), per target."""
    lines = [f"recipe {recipe.name}: {recipe.model} on {recipe.dataset} -> {run_dir}"]
    pending, states = {}, plan_states(recipe, run_dir)
    steps = [step for step, _ in states]
    stale = RunDir(run_dir).stale_entries({s.id for s in steps}, {s.target for s in steps})
    lines += [f"  remove {path.relative_to(run_dir)} (not in this recipe)" for path in stale]
    width = max([12] + [len(s.id) for s in steps if s.target is None])  # prune-round1, ...
    for step, state in states:
        if step.target is None:
            lines.append(f"  stage {step.id:<{width}} {state}")
        else:
            pending.setdefault(step.target, []).append((step.stage, state))
    for target, states in pending.items():
        todo = [stage for stage, state in states if state != "cached"]
        lines.append(f"  target {target:<12} " + ("cached" if not todo
                                                  else "to run: " + ", ".join(todo)))
    return lines


def _refuse_target(step: Step, err: ParityError, run_dir: Path, console) -> None:
    """An artifact that misses its gate is not kept; the run goes on with the other targets
    and `artifacts/<target>/refused.json` says why (the report lists it)."""
    run = RunDir(run_dir)
    folder = run.artifact_dir(step.target)
    if folder.exists():
        shutil.rmtree(folder)
    run.write_refused(step.target, step.id, str(err), err.diffs, err.facts)
    console.print(f"  {step.target}: refused by the parity gate — {err}", markup=False,
                  highlight=False)


def run_recipe(recipe: Recipe, run_dir: Path, console, *, force: bool = False,
               notes=None, intro: tuple[str, ...] | list[str] = ()) -> Path:
    """Run every step of `recipe` into `run_dir`; returns report.md's path.

    Nothing is written until the plan and the folder pass their checks; then the folder is
    locked for this process (a second run into it is refused; `notes(line)` hears of a lock
    taken over from a process that is gone: stderr by default) and the `intro` lines (what the
    checks found about the data: truncation, train/test duplicates) are printed."""
    steps = plan_steps(recipe, run_dir)  # bad targets and configs fail before anything is written
    check_run_dir(run_dir, force)
    run_dir.mkdir(parents=True, exist_ok=True)
    with held_lock(run_dir, on_stale=notes or _to_stderr):
        for line in intro:  # once the folder is ours: a refused second run prints one line
            console.print(line, markup=False, highlight=False)
        return _run_locked(recipe, steps, run_dir, console, force)


def _to_stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def _run_locked(recipe: Recipe, steps: list[Step], run_dir: Path, console, force: bool) -> Path:
    from edgecompress.reports import write_report

    open_run_dir(run_dir, force)
    mark_output(run_dir, RUN_KIND)  # what lets a later run reuse (or --force replace) it
    remove_stale_temps(run_dir)
    for path in remove_stale_steps(run_dir, steps):
        console.print(f"  {path.relative_to(run_dir)}: removed (not in this recipe)",
                      markup=False, highlight=False)
    RunDir(run_dir).write_run(recipe.identity())
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
