"""`edgecompress verify`: an arm64 artifact on arm64 CPU kernels, emulated on this host."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, err_console, guarded, print_json


@guarded
def verify(
    source: Path | None = typer.Argument(None, help="Artifact (.tflite/.onnx or its folder), "
                                                       "run directory, or bundle."),
    isa: str = typer.Option("arm64", help="Instruction set to run the artifact's kernels on."),
    cpu: list[str] | None = typer.Option(None, help="CPU profile (repeatable; default: "
                                                       "cortex-a76 and armv9-i8mm)."),
    rows: int = typer.Option(200, help="Real rows of the dataset to compare on (emulation "
                                       "costs ~100-165x native time)."),
    dataset: str | None = typer.Option(None, help="Dataset name or CSV/JSONL path, where "
                                                     "no run records one."),
    target: str | None = typer.Option(None, help="Target profile (name or TOML) to check "
                                                    "the artifact as."),
    setup: bool = typer.Option(False, "--setup", help="Build (or rebuild) the emulation "
                                                      "environment in the cache, then stop."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run the artifact on this host and under qemu emulation of arm64 CPUs on the same real
    rows: argmax agreement, max |Δ logit|, cosine, accuracy. A parity check, not a latency."""
    from edgecompress.errors import UserError

    def progress(line: str) -> None:
        err_console.print(line, markup=False)

    if setup:
        from edgecompress.targets import emulation

        spec = emulation.load_spec(isa)
        env = emulation.build_environment(spec, emulation.probe_qemu(spec), progress)
        record = {k: v for k, v in env.record.items() if k != "downloads"}
        if as_json:
            print_json({"path": str(env.root), **env.record})
        else:
            console.print(f"{env.root}: {record['bytes'] / 1e6:.0f} MB, {record['seconds']} s, "
                          f"{len(env.record['downloads'])} downloads (sha256 in "
                          f"environment.json), {record['versions']}", markup=False)
        if source is None:
            return
    if source is None:
        raise UserError("give an artifact, run directory or bundle (or --setup)")
    from edgecompress.compress.evaluation.verify import VerifyRequest, verify_artifacts

    result = verify_artifacts(VerifyRequest(source=source, isa=isa, cpus=tuple(cpu or ()),
                                            rows=rows, dataset=dataset, target=target), progress)
    if as_json:
        print_json(result)
    else:
        _print(result)
    if not result["passed"]:
        raise typer.Exit(1)


def _print(result: dict) -> None:
    from rich.table import Table

    table = Table(title=f"on {result['isa']} kernels (qemu {result['qemu']}): {result['note']}")
    for column in ("target", "CPU profile", "rows", "agreement", "max |Δ logit|", "min cosine",
                   "accuracy (emulated)", "gate"):
        table.add_column(column)
    for record in result["results"]:
        for p in record["profiles"]:
            low, high = p["agreement_ci95"]
            accuracy = p.get("accuracy")
            table.add_row(record["target"], f"{p['cpu']} (-cpu {p['qemu_cpu']})",
                          str(record["rows"]),
                          f"{p['agreement']:.1%} [{low:.1%}, {high:.1%}]",
                          f"{p['max_abs_diff']:.3g}", f"{p['min_cosine']:.4f}",
                          f"{accuracy['accuracy']:.1%}" if accuracy else "-",
                          ("pass" if p["passed"] else "FAIL")
                          + f" (>= {record['gate']['min_agreement']:.0%})")
    console.print(table)
