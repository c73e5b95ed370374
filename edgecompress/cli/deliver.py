"""`report` and `bundle`: what a finished run hands to people and to devices.

`report RUN_DIR` / `bundle RUN_DIR` build; `report compare` and `bundle verify` are subcommands.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from edgecompress.cli.common import console, err_console, guarded, print_json
from edgecompress.cli.output import emit_result, json_mode

DEFAULT = "build"  # the hidden sub-command a group runs when its first word names none


class _DefaultBuild(TyperGroup):
    """`report RUN_DIR [options]` / `bundle RUN_DIR [options]` build; `report compare …` /
    `bundle verify …` are subcommands. Arguments whose first word names no subcommand go to the
    hidden `build`, and the group's --help shows build's arguments and options as its own."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter):
        self._with_build = True  # get_params answers with build's parameters while help renders
        try:
            super().format_help(ctx, formatter)
        finally:
            self._with_build = False

    def get_params(self, ctx):
        params = super().get_params(ctx)
        if not getattr(self, "_with_build", False):
            return params
        build = [p for p in self.commands[DEFAULT].get_params(ctx) if p.name != "help"]
        return build + params

    def collect_usage_pieces(self, ctx):
        build = self.commands[DEFAULT].collect_usage_pieces(ctx)
        return [*build, "|", self.subcommand_metavar]


report_app = typer.Typer(cls=_DefaultBuild, no_args_is_help=True,
                         help="`report RUN_DIR` writes report.json, .md, .csv (+ "
                              "report-classes.csv) and .html for a run directory; `report "
                              "compare OLD NEW` diffs two runs.")


@report_app.command(DEFAULT, hidden=True)
@guarded
def report_build(
    run_dir: Path = typer.Argument(..., help="Run directory to report on."),
    device_results: Path | None = typer.Option(
        None, help="A bundle runner's JSON from the real device, added as its own rows."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the files "
                                 "written and report.json's content."),
) -> None:
    """Write report.json, .md, .csv, report-classes.csv and .html for a run directory; exit 2
    with one line naming the file when the folder is not a run or one of its files is corrupt."""
    from edgecompress.fsutil import read_json
    from edgecompress.reports import write_report
    from edgecompress.rundir import CLASSES_CSV

    with json_mode(as_json):
        paths = write_report(run_dir, device_results=device_results)
    # json / md / csv / html as before; the per-class CSV under its own key
    files = {"classes_csv" if path.name == CLASSES_CSV else path.suffix.lstrip("."): str(path)
             for path in paths}
    result = {"run_dir": str(run_dir), "files": files, "report": read_json(Path(files["json"]))}
    emit_result(result, as_json, lambda _: console.print(
        f"report written: {', '.join(str(p) for p in paths)}", markup=False, highlight=False))


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
                         help="`bundle RUN_DIR --target T --out DIR` writes a deployment "
                              "bundle; `bundle verify DIR` checks one.")


@bundle_app.command(DEFAULT, hidden=True)
@guarded
def bundle_build(
    run_dir: Path = typer.Argument(..., help="Run directory holding the exported artifact."),
    target: str = typer.Option(..., help="Target whose artifact to bundle."),
    out: Path = typer.Option(..., help="Bundle directory to create."),
    force: bool = typer.Option(False, help="Replace a bundle edgecompress made at --out "
                                           "(never a folder it did not make)."),
    as_json: bool = typer.Option(False, "--json", help="Print the bundle's manifest, with "
                                 "its directory as `out`, as one JSON object."),
) -> None:
    """Artifact + tokenizer + labels + checksummed manifest + a numpy-only run.py."""
    from edgecompress.compress.pipeline.commands import bundle_run

    with json_mode(as_json):
        manifest = bundle_run(run_dir, target, out, force=force)
    emit_result({**manifest, "out": str(out)}, as_json, lambda m: console.print(
        f"bundle for {m['target']} ({m['format']}, {m['scheme']}, {m['runtime']} "
        f"{m['runtime_version']}) written to {out}; try: python {out / 'run.py'} "
        "\"a gorgeous, witty movie\"", markup=False, highlight=False))


@bundle_app.command("verify")
@guarded
def bundle_verify(bundle: Path = typer.Argument(..., help="Bundle directory."),
                  as_json: bool = typer.Option(False, "--json", help="Print one JSON object: "
                                               "bundle, ok, problems (exit codes unchanged).")
                  ) -> None:
    """Recompute every sha256; exit 1 when a file is changed, missing or unlisted, or a
    SHA256SUMS line points outside the bundle; exit 2 when DIR is missing or a file."""
    from edgecompress.targets.bundle import verify_bundle

    problems = verify_bundle(bundle)
    if as_json:
        print_json({"bundle": str(bundle), "ok": not problems, "problems": problems})
    else:
        for problem in problems:
            err_console.print(f"bundle problem: {problem}", markup=False)
        if not problems:
            console.print(f"{bundle}: every file matches its sha256", markup=False,
                          highlight=False)
    if problems:
        raise typer.Exit(1)
