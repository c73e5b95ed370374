"""The end of a search: the front per target, the trial chosen under the budgets, the test split
for those only (once: the store keeps it), the recipe that reproduces the choice, the report.

    best.toml            the trial within the budgets on every target with the best mean dev
                         accuracy (with one target: the chosen trial); `edgecompress run` it
    best-<target>.toml   with several targets, the trial chosen for each
    search.json          every trial, and per target: front, chosen, nearest, test results
"""

from __future__ import annotations

from pathlib import Path

from edgecompress.compress.search.front import (
    Budgets,
    chosen,
    front,
    joint_best,
    nearest,
    target_points,
)
from edgecompress.compress.search.trial import measure, store_dir, trial_dir
from edgecompress.fsutil import atomic_write_json, atomic_write_text


def _on_test(out: Path, number: int, target: str) -> dict:
    """Trial `number`'s artifact for `target` evaluated on the test split (paired vs the
    teacher on test); its training and export come from the store. Steps log to the trial's
    test-log.txt."""
    from rich.console import Console

    from edgecompress.compress.pipeline.recipe import load_recipe

    folder = trial_dir(out, number)
    with (folder / "test-log.txt").open("a") as log:
        measured = measure(load_recipe(folder / "recipe.toml"), folder, store_dir(out),
                           Console(file=log, width=120, no_color=True), split="test",
                           only=target, student=False)
    return {"teacher_accuracy": measured["teacher_accuracy"], **measured["targets"][target]}


def _trial_rows(study, space) -> list[dict]:
    """Every finished trial's result, with the recipe values it tried."""
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if "result" in trial.user_attrs:
            rows.append({**trial.user_attrs["result"], "params": space.decode(trial.params)})
    return rows


def _target_summary(out: Path, results: list[dict], target: str, budgets: Budgets,
                    console, baseline: int | None = None) -> dict:
    """Front, choice and nearest misses for `target`; the front, the choice and the recipe's
    own settings (the baseline trial) on test."""
    rows = target_points(results, target)
    on_front, pick = front(rows), chosen(rows, budgets)
    measured = {r["trial"] for r in rows}
    tested = sorted(set(on_front) | {n for n in (pick, baseline) if n in measured})
    if tested:
        console.print(f"{target}: evaluating {len(tested)} trial(s) on the test split",
                      markup=False, highlight=False)
    return {"points": rows, "front": on_front, "chosen": pick,
            "nearest": [] if pick is not None else nearest(rows, budgets),
            "test": {str(n): _on_test(out, n, target) for n in tested}}


def _write_best(out: Path, number: int | None, name: str, why: str) -> str | None:
    if number is None:
        (out / name).unlink(missing_ok=True)
        return None
    text = (trial_dir(out, number) / "recipe.toml").read_text()
    atomic_write_text(out / name, f"# edgecompress search: trial {number}, {why}.\n"
                                  f"# Reproduce: edgecompress run {name}\n\n{text}")
    return name


def summarize(out: Path, study, prepared, config, console, *, workers: int,
              timing: dict | None = None) -> dict:
    """Write search.json, best*.toml and the report; returns the summary. `timing`: this
    invocation's wall time, the driver's own time and how many trials it ran."""
    from edgecompress.reports.search import write_search_report
    from edgecompress.targets import host_info

    budgets, targets = config.budgets, prepared.targets
    from edgecompress.compress.search.study import baseline_trial

    results, baseline = _trial_rows(study, prepared.space), baseline_trial(study)
    per_target = {t: _target_summary(out, results, t, budgets, console, baseline)
                  for t in targets}
    best = joint_best(results, targets, budgets)
    files = {"best": _write_best(out, best, "best.toml", "within the budgets on every target "
                                                         "with the best mean dev accuracy")}
    if len(targets) > 1:
        for target in targets:
            files[target] = _write_best(out, per_target[target]["chosen"], f"best-{target}.toml",
                                        f"chosen for {target}")
    host = {k: v for k, v in host_info(threads=1).items() if k != "threads"}
    summary = {"spec": prepared.identity(config), "host": host,
               "workers": workers, "executor": config.executor, "targets": per_target,
               "trials": results, "best": best, "baseline": baseline, "files": files,
               "timing": timing or {},
               "met": all(s["chosen"] is not None for s in per_target.values())}
    atomic_write_json(out / "search.json", summary)
    write_search_report(out, summary)
    return summary
