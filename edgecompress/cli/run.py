"""`edgecompress run RECIPE` and `edgecompress demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, err_console, guarded
from edgecompress.cli.output import emit_result, json_mode

JSON_HELP = ("Print one JSON object on stdout (progress goes to stderr): the run directory, "
             "the report's files and report.json's content; with --dry-run the checks and "
             "the plan.")


def _finished(run_dir: Path, report_md: Path) -> dict:
    """What a finished run hands a script: where it is and what its report says."""
    from edgecompress.fsutil import read_json

    files = {kind: str(report_md.with_suffix(f".{kind}")) for kind in ("md", "html", "csv",
                                                                         "json")}
    return {"run_dir": str(run_dir), "files": files,
            "report": read_json(report_md.with_suffix(".json"))}


def _print_finished(result: dict) -> None:
    console.print(f"\nreport: {result['files']['md']} (and .html, .csv, .json beside it)",
                  markup=False, highlight=False)


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@guarded(keeps_output=True)  # a run folder is a store of finished steps: resumed, not removed
def run_command(
    recipe: Path = typer.Argument(..., help="Recipe TOML (see recipes/)."),
    out: Path | None = typer.Option(None, help="Run directory (default runs/<recipe>-<time>)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and what is cached."),
    force: bool = typer.Option(False, help="Start over: remove the run folder's own files first "
                                           "(anything else in it is kept)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run a recipe: stages (finetune, prune, distill), export per target, eval, bench, report."""
    import time

    from edgecompress.compress.data.audit import recipe_data_lines
    from edgecompress.compress.models.modules import check_out_location
    from edgecompress.compress.pipeline.checks import output_lines, validate_inputs
    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import plan_lines, run_recipe

    plan = load_recipe(recipe)
    out = out or Path("runs") / f"{plan.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_out_location(out)
    with json_mode(as_json):
        # every check `run` makes before it writes anything (run.json, the marker, the lock),
        # and the lines --dry-run prints for them
        if plan.llm is not None:  # a decoder LM: its own checks (compress/pipeline/llm_plan.py)
            from edgecompress.compress.pipeline.checks import llm_checks

            checked, data = llm_checks(plan, out, force=force), []
        else:
            checked = validate_inputs(plan, fetch=not dry_run)
            checked += output_lines(plan, out, force=force)
            data = recipe_data_lines(plan)  # truncation share per split, train/test duplicates
            checked += data
        if dry_run:
            lines = checked + plan_lines(plan, out)
        else:
            result = _finished(out, run_recipe(plan, out, console, force=force, notes=_note,
                                               intro=data))
    if dry_run:
        emit_result({"run_dir": str(out), "checks": checked, "plan": lines[len(checked):]},
                    as_json, lambda _: _print_lines(lines))
        return
    emit_result(result, as_json, _print_finished)


def _note(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


@guarded(keeps_output=True)
def demo(
    out: Path = typer.Option(Path("demo-run"), help="Run directory."),
    force: bool = typer.Option(False, help="Start over: remove the run folder's own files first "
                                           "(anything else in it is kept)."),
    runs: int | None = typer.Option(None, min=1, help="Timed runs per benchmark."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout "
                                 "(progress goes to stderr): the run directory, the report's "
                                 "files and report.json's content."),
) -> None:
    """`edgecompress run recipes/demo.toml`: minilm-l6 + rt-polarity on every target."""
    from edgecompress.compress.models.modules import check_out_location
    from edgecompress.compress.pipeline.demo import run_demo

    check_out_location(out)
    with json_mode(as_json):
        result = _finished(out, run_demo(out, console, force=force, bench_runs=runs))
    emit_result(result, as_json, _print_finished)
