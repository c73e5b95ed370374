"""`edgecompress search`: the door to compress/search. Parses flags, checks everything, opens
(or resumes) the search folder, runs the trials with a live display, prints the outcome; a
budget nothing meets exits 1 with the nearest trials named."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import typer

from edgecompress.cli.common import console, guarded
from edgecompress.cli.output import emit_result, json_mode
from edgecompress.compress.search.executors import Executor
from edgecompress.errors import UserError

DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """'30m', '90s', '1h30m' -> seconds; UserError otherwise."""
    match = DURATION.match(text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise UserError(f"--time: expected a duration such as 30m, 90s or 1h30m, got {text!r}")
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UserError(f"--time: expected a positive duration, got {text!r}")
    return total


def _config(recipe: Path, out: Path, targets, budget_ms, budget_mb, max_drop, trials, time,
            executor, address, workers, seed, force):
    from edgecompress.compress.search.front import Budgets
    from edgecompress.compress.search.study import SearchConfig

    try:
        budgets = Budgets(budget_ms, budget_mb, max_drop)
    except ValueError as err:
        raise UserError(str(err).replace("budget latency_ms", "--budget-ms")
                        .replace("budget size_mb", "--budget-mb")
                        .replace("budget max_drop", "--max-drop")) from None
    return SearchConfig(recipe=recipe, out=out, targets=tuple(targets or ()), budgets=budgets,
                        trials=trials, time_s=parse_duration(time) if time else None,
                        executor=executor, address=address, workers=workers, seed=seed,
                        force=force)


def _budgets_line(config) -> str:
    from edgecompress.reports.search import budget_line

    return budget_line({"budgets": dataclasses.asdict(config.budgets)})


def run_search(config, console) -> dict:
    """Run (or resume) the search `config` (a SearchConfig) describes, showing its trials live
    on `console`; returns its summary (search.json). Every check happens before the folder is
    touched."""
    from edgecompress.compress.pipeline.checks import validate_inputs
    from edgecompress.compress.search.display import Display
    from edgecompress.compress.search.executors import make_executor
    from edgecompress.compress.search.study import (
        cpus_per_trial,
        finished,
        open_out,
        open_study,
        prepare,
        queue_baseline,
        recover,
        run_trials,
    )
    from edgecompress.compress.search.summary import summarize

    prepared = prepare(config)
    validate_inputs(prepared.recipe)  # model, targets and dataset, before any folder is made
    executor = make_executor(config.executor, cpus_per_trial(prepared), workers=config.workers,
                             address=config.address)
    try:
        resumed = open_out(config.out, prepared.identity(config), config.force)
        study = open_study(config.out, config)
        queued = recover(study, config.out, prepared, config.budgets) if resumed else 0
        if not resumed:
            queue_baseline(study, prepared)
    except BaseException:
        executor.close()
        raise
    done = len(finished(study))
    console.print(f"search {prepared.recipe.name}: {len(prepared.space.params)} keys, "
                  f"targets {', '.join(prepared.targets)}, budgets {_budgets_line(config)}; "
                  f"{config.executor} executor, {executor.workers} worker(s)"
                  + (f"; resuming: {done} trials done, {queued} to run again" if resumed else ""),
                  markup=False, highlight=False)
    display = Display(console, prepared.targets, config.budgets, config.time_s, config.trials)
    try:
        clock = run_trials(study, prepared, config, executor, display)
    finally:
        display.close()
    return summarize(config.out, study, prepared, config, console, workers=executor.workers,
                     timing={"wall_seconds": round(clock.elapsed(), 2),
                             "driver_seconds": round(clock.driver_s, 3),
                             "trials_run": len(clock.durations)})


def _print_outcome(summary: dict, out: Path) -> None:
    for target, part in summary["targets"].items():
        if part["chosen"] is None:
            near = ", ".join(f"trial {n}" for n in part["nearest"]) or "none measured"
            console.print(f"{target}: no trial meets the budgets; nearest: {near}",
                          markup=False, highlight=False)
            continue
        test = part["test"][str(part["chosen"])]
        console.print(f"{target}: trial {part['chosen']} — test {test['accuracy']:.2%} "
                      f"({test['delta']:+.2f} points vs teacher), {test['p50_ms']:.2f} ms, "
                      f"{test['size_bytes'] / 1e6:.2f} MB", markup=False, highlight=False)
    best = summary["files"].get("best")
    console.print(f"\nreport: {out / 'search.md'} (and search.html, search.json)"
                  + (f"; reproduce: edgecompress run {out / best}" if best else ""),
                  markup=False, highlight=False)


@guarded
def search_command(
    recipe: Path = typer.Argument(..., help="Recipe TOML with a \\[search] table."),
    target: list[str] | None = typer.Option(None, "--target", help="Search for this target "
                                            "(repeat; default: the recipe's)."),
    budget_ms: float | None = typer.Option(None, help="p50 latency budget per target, ms."),
    budget_mb: float | None = typer.Option(None, help="Artifact size budget per target, MB."),
    max_drop: float | None = typer.Option(None, help="Allowed accuracy drop vs the teacher "
                                          "on dev, points (also prunes trials early)."),
    trials: int = typer.Option(20, help="Trials to finish (a resumed search counts its own)."),
    time: str | None = typer.Option(None, help="Wall-time budget, e.g. 30m: no trial "
                                    "starts that would not finish in it."),
    executor: Executor = typer.Option(Executor.local, help="local (a process pool on this "
                                      "host) or ray (pip install 'edgecompress\\[ray]')."),
    address: str | None = typer.Option(None, help="Ray cluster to join (default: start a "
                                       "local Ray instance)."),
    workers: int | None = typer.Option(None, min=1, help="Local trials at once (default: "
                                       "the host's cores / CPUs per trial)."),
    seed: int = typer.Option(0, help="Sampler seed."),
    out: Path | None = typer.Option(None, help="Search folder (default "
                                    "searches/<recipe>)."),
    force: bool = typer.Option(False, help="Replace a different search at --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (search.json) as "
                                 "JSON on stdout; progress goes to stderr."),
) -> None:
    """Search prune x distill x quantize x format for the best artifact per target under budgets."""
    from edgecompress.compress.models.modules import check_out_location

    if address is not None and executor is not Executor.ray:
        raise UserError("--address is for --executor ray")
    out = out or Path("searches") / recipe.stem
    check_out_location(out)
    try:
        config = _config(recipe, out, target, budget_ms, budget_mb, max_drop, trials, time,
                         executor.value, address, workers, seed, force)
    except ValueError as err:
        raise UserError(str(err)) from None
    with json_mode(as_json):
        summary = run_search(config, console)
    emit_result(summary, as_json, lambda s: _print_outcome(s, out))
    if not summary["met"]:
        raise typer.Exit(1)
