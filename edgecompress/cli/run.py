"""`edgecompress run RECIPE` and `edgecompress demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecompress.cli.common import (console, guarded)


@guarded
def run_command(
    recipe: Path = typer.Argument(..., help="Recipe TOML (see recipes/)."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default runs/<recipe>-<time>)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and what is cached."),
    force: bool = typer.Option(False, help="Replace a different run at --out."),
) -> None:
    """Run a recipe: stages (finetune, prune, distill), export per target, eval, bench, report."""
    import time

    from edgecompress.compress.pipeline.checks import validate_inputs
    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import plan_lines, run_recipe

    plan = load_recipe(recipe)
    out = out or Path("runs") / f"{plan.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from edgecompress.compress.models.modules import check_out_location

    check_out_location(out)
    checked = validate_inputs(plan, fetch=not dry_run)  # before run.json is written
    if dry_run:
        for line in checked + plan_lines(plan, out):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    report_md = run_recipe(plan, out, console, force=force)
    console.print(f"\nreport: {report_md} (and .html, .csv, .json beside it)")


@guarded
def demo(
    out: Path = typer.Option(Path("demo-run"), help="Run directory."),
    force: bool = typer.Option(False, help="Replace a different run at --out."),
    runs: Optional[int] = typer.Option(None, min=1, help="Timed runs per benchmark."),
) -> None:
    """`edgecompress run recipes/demo.toml`: minilm-l6 + rt-polarity on every target."""
    from edgecompress.compress.models.modules import check_out_location
    from edgecompress.compress.pipeline.demo import run_demo

    check_out_location(out)
    report_md = run_demo(out, console, force=force, bench_runs=runs)
    console.print(f"\nreport: {report_md} (and .html, .csv, .json beside it)")
