"""One search trial: a normal recipe run, measured on dev, with its steps in the search's store.

    <search>/trials/0007/recipe.toml   the trial's recipe (a full recipe: `edgecompress run` it)
    <search>/trials/0007/result.json   what it measured (dev accuracy, p50 ms, size per target)
    <search>/trials/0007/log.txt       what its steps printed
    <search>/store/<step>-<identity>/  every step's output, shared by all trials (runs.run_step)

A trial whose steps match an earlier trial's (same stage, config and input content) reuses them,
so trials that differ only in a target's scheme train once. After training, the fp32 student is
evaluated on dev; when it is already further below the teacher than `max_drop`, the trial stops
there (pruned): quantization does not win accuracy back. `run_trial` takes and returns plain
JSON, so a process pool or a Ray worker can run it.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path

from edgecompress.compress.pipeline.plan import Step, plan_steps
from edgecompress.compress.pipeline.recipe import Recipe, load_recipe
from edgecompress.compress.pipeline.target_stages import EvalConfig
from edgecompress.errors import ParityError, UserError
from edgecompress.fsutil import atomic_write_json, atomic_write_text, read_json, sha256_file
from edgecompress.rundir import MANIFEST_FILE

RESULT = "result.json"


def trial_dir(out: Path, number: int) -> Path:
    return Path(out) / "trials" / f"{number:04d}"


def store_dir(out: Path) -> Path:
    return Path(out) / "store"


def write_trial_recipe(folder: Path, recipe: dict) -> Path:
    import tomli_w

    path = folder / "recipe.toml"
    atomic_write_text(path, tomli_w.dumps(recipe))
    return path


class _Walk:
    """Runs steps of one recipe through the store, remembering their outputs."""

    def __init__(self, recipe: Recipe, folder: Path, store: Path, console):
        self.recipe, self.folder, self.store, self.console = recipe, folder, store, console
        self.outputs: dict[str, Path] = {}
        self.cached: list[str] = []

    def run(self, step: Step) -> dict:
        from edgecompress.compress.pipeline.runs import run_step, step_inputs

        result = run_step(step, step_inputs(step, self.outputs), self.recipe, self.folder,
                          self.console, store=self.store)
        self.outputs[step.id] = result.output
        if result.cached:
            self.cached.append(step.id)
        return result.metrics


def _plan(recipe: Recipe, folder: Path, split: str, student: bool) -> list[Step]:
    """The recipe's steps with every evaluation on `split` (plus the fp32 student's eval). No
    verify steps: trials are compared on dev, and the emulated check (minutes a target) belongs
    to the run of the recipe the search picks."""
    steps = [dataclasses.replace(s, config=EvalConfig(split=split)) if s.stage == "eval" else s
             for s in plan_steps(recipe, folder) if s.stage != "verify"]
    if not student:
        return steps
    final = next((dict(s.inputs)["model"] for s in steps if s.stage == "export"), None)
    student = Step("eval-student", "eval", EvalConfig(split=split),
                   (("model", final), ("reference", "@eval-teacher")), folder / "student")
    at = next(i for i, s in enumerate(steps) if s.id == "eval-teacher") + 1
    return steps[:at] + [student] + steps[at:]


def _target_row(walk: _Walk, steps: list[Step]) -> dict:
    """Export, eval and bench of one target -> its row (or why the gate refused it)."""
    export, evaluate, bench = steps
    try:
        walk.run(export)
    except ParityError as err:
        return {"refused": str(err)}
    walk.run(evaluate)
    walk.run(bench)
    artifact = walk.outputs[export.id]
    evaluation, measured = read_json(walk.outputs[evaluate.id]), read_json(walk.outputs[bench.id])
    manifest = read_json(artifact.parent / MANIFEST_FILE)
    return {"format": manifest.get("format"), "scheme": manifest.get("scheme"),
            "accuracy": evaluation["accuracy"], "n": evaluation["n"],
            "delta": evaluation["vs_teacher"]["delta"],
            "delta_ci95": evaluation["vs_teacher"]["delta_ci95"],
            "p50_ms": measured["p50_ms"], "size_bytes": measured["size_bytes"],
            "artifact": str(artifact), "sha256": sha256_file(artifact)}


def measure(recipe: Recipe, folder: Path, store: Path, console, *, split: str = "dev",
            max_drop: float | None = None, only: str | None = None,
            student: bool = True) -> dict:
    """Run `recipe` through the store and measure every target (or `only` that one) on
    `split`; with `student`, the fp32 student is evaluated too and the trial stops there when
    it misses `max_drop` already."""
    walk = _Walk(recipe, folder, store, console)
    steps = _plan(recipe, folder, split, student)
    for step in (s for s in steps if s.target is None):
        walk.run(step)
    result = {"split": split,
              "teacher_accuracy": read_json(walk.outputs["eval-teacher"])["accuracy"]}
    if student:
        fp32 = read_json(walk.outputs["eval-student"])
        drop = -fp32["vs_teacher"]["delta"]
        result.update(student_accuracy=fp32["accuracy"], student_delta=-drop)
        if max_drop is not None and drop > max_drop:
            return {**result, "state": "pruned",
                    "reason": f"the fp32 student is {drop:.2f} points below the teacher on "
                              f"{split}, more than --max-drop {max_drop:g}"}
    targets = {}
    for target in dict.fromkeys(s.target for s in steps if s.target):
        if only is None or target == only:
            targets[target] = _target_row(walk, [s for s in steps if s.target == target])
    return {**result, "state": "complete", "targets": targets, "cached_steps": walk.cached}


def run_trial(spec: dict) -> dict:
    """Run trial `spec` ({number, out, recipe: the trial's recipe table, max_drop, threads}) and
    return its result; a trial that fails says why in its result instead of raising."""
    folder = trial_dir(Path(spec["out"]), spec["number"])
    began = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "log.txt").open("w") as log:
        from rich.console import Console

        console = Console(file=log, width=120, no_color=True)
        try:
            if spec.get("threads"):
                import torch

                torch.set_num_threads(int(spec["threads"]))
            recipe = load_recipe(write_trial_recipe(folder, spec["recipe"]))
            result = measure(recipe, folder, store_dir(Path(spec["out"])), console,
                             max_drop=spec.get("max_drop"))
        except UserError as err:
            result = {"state": "failed", "error": str(err)}
        except Exception as err:  # a trial's crash is the trial's, not the search's
            console.print(traceback.format_exc(), markup=False)
            result = {"state": "failed", "error": f"{type(err).__name__}: {err}"}
    result = {"number": spec["number"], **result,
              "seconds": round(time.perf_counter() - began, 1)}
    atomic_write_json(folder / RESULT, result)
    return result


def read_result(out: Path, number: int) -> dict | None:
    """A trial's result.json if its run finished (a killed search may have left one)."""
    path = trial_dir(out, number) / RESULT
    try:
        return read_json(path) if path.is_file() else None
    except ValueError:
        return None
