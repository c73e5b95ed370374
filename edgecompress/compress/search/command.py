"""`edgecompress search RECIPE`: check everything, open (or resume) the search folder, run the
trials, summarize. Every check happens before the folder is touched."""

from __future__ import annotations

import dataclasses

from edgecompress.compress.search.display import Display
from edgecompress.compress.search.executors import make_executor
from edgecompress.compress.search.study import (SearchConfig, cpus_per_trial, finished,
                                                open_out, open_study, prepare, queue_baseline,
                                                recover, run_trials)
from edgecompress.compress.search.summary import summarize


def _budgets_line(config: SearchConfig) -> str:
    from edgecompress.reports.search import budget_line

    return budget_line({"budgets": dataclasses.asdict(config.budgets)})


def run_search(config: SearchConfig, console) -> dict:
    """Run (or resume) the search `config` describes; returns its summary (search.json)."""
    from edgecompress.compress.pipeline.checks import validate_inputs

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
