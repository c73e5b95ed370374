"""`report` and `bundle`: what a finished run hands to people and to devices.

`report RUN_DIR` / `bundle RUN_DIR` build; `report compare` and `bundle verify` are subcommands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from edgecompress.cli.common import console, err_console, guarded, print_json


class _DefaultBuild(TyperGroup):
    """`report RUN_DIR` / `bundle RUN_DIR` build; `report compare …` / `bundle verify …` are
    subcommands. A first word that names no subcommand is the argument of hidden `build`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(cls=_DefaultBuild, no_args_is_help=True,
                         help="Reports: `report RUN_DIR` writes them; `report compare OLD NEW`.")


@report_app.command("build", hidden=True)
@guarded
def report_build(
    run_dir: Path = typer.Argument(..., help="Run directory to report on."),
    device_results: Optional[Path] = typer.Option(
        None, help="A bundle runner's JSON from the real device, added as its own rows."),
) -> None:
    """Write report.json, .md, .csv and .html for a run directory."""
    from edgecompress.reports import write_report

    paths = write_report(run_dir, device_results=device_results)
    console.print(f"report written: {', '.join(str(p) for p in paths)}")


@report_app.command("compare")
@guarded
def report_compare(
    old: Path = typer.Argument(..., help="Run directory or report.json (baseline)."),
    new: Path = typer.Argument(..., help="Run directory or report.json (candidate)."),
    max_accuracy_drop: float = typer.Option(
        1.0, help="Allowed accuracy drop, in points. Where both runs have paired intervals vs "
                  "the same teacher, a drop is a regression only if it exceeds this AND its "
                  "95 % interval excludes 0."),
    max_latency_increase: float = typer.Option(0.10, help="Allowed p50 increase (0.1 = 10 %)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Diff two runs; exit 1 when NEW regresses beyond the thresholds (CI mode).

    An accuracy drop counts when it exceeds --max-accuracy-drop; where both runs carry paired
    intervals vs the same teacher (eval.json `vs_teacher`), it must also have a 95 % interval
    that excludes 0. Warns when the runs were benchmarked on different (or unrecorded) hosts.
    """
    from edgecompress.reports.compare import Thresholds, compare_reports, load_report

    limits = Thresholds(max_accuracy_drop, max_latency_increase)
    diffs, regressions, warnings = compare_reports(load_report(old), load_report(new), limits)
    if as_json:
        print_json({"diffs": diffs, "regressions": regressions, "warnings": warnings})
    else:
        from edgecompress.reports.render import print_compare

        print_compare(console, diffs, regressions, warnings)
    if regressions:
        raise typer.Exit(1)


bundle_app = typer.Typer(cls=_DefaultBuild, no_args_is_help=True,
                         help="Deployment bundles: `bundle RUN_DIR --target T --out DIR`; "
                              "`bundle verify DIR`.")


@bundle_app.command("build", hidden=True)
@guarded
def bundle_build(
    run_dir: Path = typer.Argument(..., help="Run directory holding the exported artifact."),
    target: str = typer.Option(..., help="Target whose artifact to bundle."),
    out: Path = typer.Option(..., help="Bundle directory to create."),
    force: bool = typer.Option(False, help="Replace a bundle edgecompress made at --out "
                                           "(never a folder it did not make)."),
) -> None:
    """Artifact + tokenizer + labels + checksummed manifest + a numpy-only run.py."""
    from edgecompress.compress.pipeline.commands import bundle_run

    manifest = bundle_run(run_dir, target, out, force=force)
    console.print(f"bundle for {manifest['target']} ({manifest['format']}, {manifest['scheme']}, "
                  f"{manifest['runtime']} {manifest['runtime_version']}) written to {out}; "
                  f"try: python {out / 'run.py'} \"a gorgeous, witty movie\"")


@bundle_app.command("verify")
@guarded
def bundle_verify(bundle: Path = typer.Argument(..., help="Bundle directory.")) -> None:
    """Recompute every sha256; exit 1 when a file is changed, missing or unlisted, or a
    SHA256SUMS line points outside the bundle; exit 2 when DIR is missing or a file."""
    from edgecompress.targets.bundle import verify_bundle

    problems = verify_bundle(bundle)
    for problem in problems:
        err_console.print(f"bundle problem: {problem}", markup=False)
    if problems:
        raise typer.Exit(1)
    console.print(f"{bundle}: every file matches its sha256")
