"""Build `report.json` and `report.md` for a run directory, from the JSON the stages wrote.

This package reads files only (no torch, no compress/targets imports): one row per artifact under
`artifacts/*/` (manifest.json + eval.json + bench.json), plus the fp32 teacher from
`teacher/eval.json` as the reference row.
"""

from __future__ import annotations

import csv
import io
import json
import platform
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, atomic_write_text
from edgecompress.reports.html import render_html
from edgecompress.reports.pareto import pareto_front
from edgecompress.reports.quantization import quantization_entries, quantization_markdown

DEVICE_DIR = "device-results"
ROW_KEYS = ("target", "format", "scheme", "runtime", "threads", "size_bytes", "p50_ms", "p90_ms",
            "p99_ms", "peak_rss_mb", "accuracy", "ci95", "n", "agreement")
CSV_KEYS = ("target", "format", "scheme", "measured_on", "runtime", "threads", "size_bytes",
            "gzip_bytes", "p50_ms", "p90_ms", "p99_ms", "peak_rss_mb", "accuracy", "ci95_low",
            "ci95_high", "n", "agreement", "parity_max_abs_diff", "pareto_optimal", "artifact")
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
        "budgets": manifest.get("budgets"), "measured_on": "host",
    }


def device_rows(run_dir: Path) -> list[dict]:
    """Rows from on-device measurements imported with `report --device-results`."""
    rows = []
    for path in sorted(run_dir.glob(f"{DEVICE_DIR}/*.json")):
        data = _read(path)
        rows.append({**{key: None for key in ROW_KEYS}, **{k: data.get(k) for k in ROW_KEYS},
                     "measured_on": "device", "device": data.get("device")})
    return rows


def collect_findings(run_dir: Path) -> list[dict]:
    """What earlier stages found: `findings` lists left in manifests, and the stage records
    (pruning's accuracy before recovery and speedup gate, distillation's test accuracy)."""
    findings = []
    for path in sorted(run_dir.glob("**/manifest.json")):
        for finding in _read(path).get("findings") or []:
            findings.append({"source": str(path.parent.relative_to(run_dir)), **finding})
    for path in sorted(run_dir.glob("stages/*/stage.json")):
        findings += stage_findings(_read(path))
    return findings


def _pct(value) -> str:
    return "—" if value is None else f"{value:.2%}"


def _ci(metrics: dict) -> str:
    low, high = metrics.get("ci95") or (None, None)
    return "—" if low is None else f"[{low:.1%}, {high:.1%}]"


def stage_findings(record: dict) -> list[dict]:
    """Findings of one stages/<name>/stage.json (empty for stages with nothing to flag)."""
    name, metrics = record.get("stage"), record.get("metrics") or {}
    found = []
    accuracy = metrics.get("accuracy") or {}
    if name in ("prune", "vocab") and accuracy.get("after"):
        before, after = accuracy.get("before") or {}, accuracy["after"]
        found.append({"title": f"{name}: test accuracy before any recovery", "rows": [
            {"before": f"{_pct(before.get('accuracy'))} {_ci(before)}",
             "after": f"{_pct(after.get('accuracy'))} {_ci(after)}",
             "agreement with before": _pct(after.get("agreement")),
             "drop (points)": f"{(accuracy.get('drop') or 0) * 100:.2f}"}]})
    gate = metrics.get("speedup_gate")
    if gate:
        found.append({"title": f"{name}: speedup gate on {gate.get('target')}",
                      "text": f"verdict {gate.get('verdict')}: latency ratio "
                              f"{gate.get('latency_ratio')}, size ratio {gate.get('size_ratio')}"})
    test = metrics.get("test") or {}
    if name == "distill" and test:
        rows = [{"model": who, "accuracy": _pct(test[who].get("accuracy")), "95 % CI":
                 _ci(test[who]), "agreement with teacher": _pct(test[who].get("agreement"))}
                for who in ("teacher", "student") if who in test]
        found.append({"title": "distill: student vs teacher on the test split", "rows": rows})
    return found


def build_report(run_dir: Path) -> dict:
    """The report as a dict; raises UserError when `run_dir` holds no run."""
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    folders = sorted(p.parent for p in run_dir.glob("artifacts/*/manifest.json"))
    teacher = _read(run_dir / "teacher" / "eval.json")
    if not folders and not teacher:
        raise UserError(f"{run_dir} holds no artifacts/*/manifest.json nor teacher/eval.json: "
                        "not a run directory")
    rows = [artifact_row(folder) for folder in folders] + device_rows(run_dir)
    hosts = {_read(f / "bench.json").get("host") for f in folders} - {None}
    host = ", ".join(sorted(hosts)) or platform.machine()
    return {"run": _read(run_dir / "run.json"), "teacher": teacher or None, "rows": rows,
            "pareto": pareto_front(rows), "findings": collect_findings(run_dir),
            "latency_note": HOST_NOTE.format(host=host),
            "quantization": quantization_entries(folders)}


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
              "| agreement vs fp32 teacher | parity max-diff | Pareto |",
              "|---|---|---|---:|---:|---:|---|---:|---:|---|"]
    front = set(report.get("pareto", []))
    for i, row in enumerate(report["rows"]):
        target = row["target"] + (" (device)" if row.get("measured_on") == "device" else "")
        lines.append(
            f"| {target} | {row['format']} | {row['scheme']} "
            f"| {_fmt(row['size_bytes'], '.2f', 1e-6)} | {_fmt(row['p50_ms'], '.2f')} "
            f"| {_fmt(row['p90_ms'], '.2f')} | {_accuracy_cell(row)} "
            f"| {_fmt(row['agreement'], '.2%')} | {_fmt(row.get('parity_max_abs_diff'), '.1e')} "
            f"| {'★' if i in front else ''} |")
    host_rows = [r for r in report["rows"] if r.get("measured_on") != "device"]
    threads = ", ".join(f"{r['target']} {r['threads']}" for r in host_rows)
    lines += ["", f"> {report['latency_note']} Threads: {threads}.",
              "> ★ = Pareto-optimal in p50 latency vs accuracy across all rows.", ""]
    lines += _markdown_findings(report.get("findings", []))
    lines += quantization_markdown(report.get("quantization") or [])
    return "\n".join(lines)


def _markdown_findings(findings: list[dict]) -> list[str]:
    lines = ["## Findings of earlier stages", ""] if findings else []
    for finding in findings:
        lines += [f"### {finding['title']}", ""]
        if finding.get("text"):
            lines += [finding["text"], ""]
        rows = finding.get("rows") or []
        if rows:
            keys = list(rows[0])
            lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(str(r.get(k)) for k in keys) + " |" for r in rows]
            lines.append("")
    return lines


def render_csv(report: dict) -> str:
    """One CSV line per row, flat columns (CI split into low / high)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_KEYS, extrasaction="ignore")
    writer.writeheader()
    front = set(report.get("pareto", []))
    for i, row in enumerate(report["rows"]):
        low, high = row.get("ci95") or (None, None)
        writer.writerow({**row, "ci95_low": low, "ci95_high": high, "pareto_optimal": i in front})
    return buffer.getvalue()


def import_device_results(run_dir: Path, results: Path) -> Path:
    """Copy a bundle runner's JSON into the run so every later report keeps its rows."""
    data = _read(results)
    if not isinstance(data, dict) or not data:
        raise UserError(f"{results}: expected a JSON object from a bundle's run.py --bench")
    missing = [key for key in ("target", "p50_ms") if data.get(key) is None]
    if missing:
        raise UserError(f"{results} lacks {', '.join(missing)}: not a bundle runner's results")
    dest = run_dir / DEVICE_DIR / results.name
    atomic_write_json(dest, data)
    return dest


def write_report(run_dir: Path, device_results: Path | None = None) -> list[Path]:
    """Write report.json, .md, .csv and .html into `run_dir`; returns their paths."""
    report = build_report(run_dir)
    if device_results is not None:
        import_device_results(run_dir, device_results)
        report = build_report(run_dir)
    paths = {name: run_dir / f"report.{name}" for name in ("json", "md", "csv", "html")}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["md"], render_markdown(report))
    atomic_write_text(paths["csv"], render_csv(report))
    atomic_write_text(paths["html"], render_html(report))
    return list(paths.values())
