"""`edgecompress search`: the door to compress/search. Parses flags, prints the outcome; a
budget nothing meets exits 1 with the nearest trials named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

from edgecompress.cli.common import console, guarded
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


def _points(max_drop: str | None) -> float | None:
    """--max-drop as accuracy points, read by the one parser quantize uses too; a relative
    drop ('2%') is refused: the search's budget compares points against the teacher."""
    from edgecompress.compress.config import FieldError, parse_max_drop

    if max_drop is None:
        return None
    try:
        value, relative = parse_max_drop(max_drop)
    except FieldError as err:
        raise UserError(f"--max-drop: {err.message}") from None
    if relative:
        raise UserError(f"--max-drop: search takes accuracy points (e.g. 1.0), got {max_drop!r}")
    return value


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
    target: Optional[List[str]] = typer.Option(None, "--target", help="Search for this target "
                                               "(repeat; default: the recipe's)."),
    budget_ms: Optional[float] = typer.Option(None, help="p50 latency budget per target, ms."),
    budget_mb: Optional[float] = typer.Option(None, help="Artifact size budget per target, MB."),
    max_drop: Optional[str] = typer.Option(None, help="Allowed accuracy drop vs the teacher on "
                                           "dev, points (1.0; also prunes trials early)."),
    trials: int = typer.Option(20, help="Trials to finish (a resumed search counts its own)."),
    time: Optional[str] = typer.Option(None, help="Wall-time budget, e.g. 30m: no trial "
                                       "starts that would not finish in it."),
    executor: str = typer.Option("local", help="local (process pool) or ray."),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join (default: start a "
                                          "local Ray instance)."),
    workers: Optional[int] = typer.Option(None, min=1, help="Local trials at once (default: "
                                          "the host's cores / CPUs per trial)."),
    seed: int = typer.Option(0, help="Sampler seed."),
    out: Optional[Path] = typer.Option(None, help="Search folder (default "
                                       "searches/<recipe>)."),
    force: bool = typer.Option(False, help="Replace a different search at --out."),
) -> None:
    """Search prune x distill x quantize x format for the best artifact per target under budgets."""
    from edgecompress.compress.models.modules import check_out_location
    from edgecompress.compress.search.command import run_search

    out = out or Path("searches") / recipe.stem
    check_out_location(out)
    max_drop = _points(max_drop)
    try:
        config = _config(recipe, out, target, budget_ms, budget_mb, max_drop, trials, time,
                         executor, address, workers, seed, force)
    except ValueError as err:
        raise UserError(str(err)) from None
    summary = run_search(config, console)
    _print_outcome(summary, out)
    if not summary["met"]:
        raise typer.Exit(1)
