"""Build `report.json` and `report.md` for a run directory, from the JSON the stages wrote.

This package reads files only (no torch, no compress/targets imports): one row per artifact under
`artifacts/*/` (manifest.json + eval.json + bench.json), plus the fp32 teacher from
`teacher/eval.json` as the reference row.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, atomic_write_text

HOST_NOTE = ("Latency was measured on this host ({host}) with each target's runtime, thread count "
             "and input shape — not on the device itself. Use it to compare artifacts, and the "
             "bundle runner on the real device for absolute numbers.")


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None


def artifact_row(folder: Path) -> dict:
    """One report row from an artifact folder; missing eval/bench leave their fields None."""
    manifest = _read(folder / "manifest.json")
    evaluation, bench = _read(folder / "eval.json"), _read(folder / "bench.json")
    return {
        "target": manifest.get("target"), "format": manifest.get("format"),
        "scheme": manifest.get("scheme"), "runtime": manifest.get("runtime"),
        "threads": bench.get("threads", manifest.get("threads")),
        "artifact": str(folder / manifest.get("artifact", "")),
        "size_bytes": bench.get("size_bytes", manifest.get("size_bytes")),
        "gzip_bytes": bench.get("gzip_bytes"),
        "p50_ms": bench.get("p50_ms"), "p90_ms": bench.get("p90_ms"),
        "p99_ms": bench.get("p99_ms"), "peak_rss_mb": bench.get("peak_rss_mb"),
        "accuracy": evaluation.get("accuracy"), "ci95": evaluation.get("ci95"),
        "n": evaluation.get("n"), "agreement": evaluation.get("agreement"),
        "parity_max_abs_diff": manifest.get("parity", {}).get("max_abs_diff"),
        "parity_agreement": manifest.get("parity", {}).get("agreement"),
    }


def build_report(run_dir: Path) -> dict:
    """The report as a dict; raises UserError when `run_dir` holds no run."""
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    folders = sorted(p.parent for p in run_dir.glob("artifacts/*/manifest.json"))
    teacher = _read(run_dir / "teacher" / "eval.json")
    if not folders and not teacher:
        raise UserError(f"{run_dir} holds no artifacts/*/manifest.json nor teacher/eval.json: "
                        "not a run directory")
    rows = [artifact_row(folder) for folder in folders]
    hosts = {_read(f / "bench.json").get("host") for f in folders} - {None}
    host = ", ".join(sorted(hosts)) or platform.machine()
    return {"run": _read(run_dir / "run.json"), "teacher": teacher or None, "rows": rows,
            "latency_note": HOST_NOTE.format(host=host)}


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(value * scale, spec)


def _accuracy_cell(row: dict) -> str:
    if row.get("accuracy") is None:
        return "—"
    low, high = row["ci95"]
    return f"{row['accuracy']:.2%} [{low:.1%}, {high:.1%}]"


def render_markdown(report: dict) -> str:
    """Markdown: teacher line, one table row per artifact, the latency note."""
    lines = ["# edgecompress report", ""]
    run = report.get("run") or {}
    if run:
        lines += [f"Model `{run.get('model')}`, dataset `{run.get('dataset')}`.", ""]
    teacher = report.get("teacher")
    if teacher:
        lines += [f"Reference: fp32 PyTorch teacher, accuracy {_accuracy_cell(teacher)} "
                  f"on n = {teacher.get('n')}.", ""]
    lines += ["| target | format | scheme | size MB | p50 ms | p90 ms | accuracy [95 % CI] "
              "| agreement vs fp32 teacher | parity max-diff |",
              "|---|---|---|---:|---:|---:|---|---:|---:|"]
    for row in report["rows"]:
        lines.append(
            f"| {row['target']} | {row['format']} | {row['scheme']} "
            f"| {_fmt(row['size_bytes'], '.2f', 1e-6)} | {_fmt(row['p50_ms'], '.2f')} "
            f"| {_fmt(row['p90_ms'], '.2f')} | {_accuracy_cell(row)} "
            f"| {_fmt(row['agreement'], '.2%')} | {_fmt(row['parity_max_abs_diff'], '.1e')} |")
    threads = ", ".join(f"{r['target']} {r['threads']}" for r in report["rows"])
    lines += ["", f"> {report['latency_note']} Threads: {threads}.", ""]
    return "\n".join(lines)


def write_report(run_dir: Path) -> list[Path]:
    """Write report.json and report.md into `run_dir`; returns their paths."""
    report = build_report(run_dir)
    json_path, md_path = run_dir / "report.json", run_dir / "report.md"
    atomic_write_json(json_path, report)
    atomic_write_text(md_path, render_markdown(report))
    return [json_path, md_path]
