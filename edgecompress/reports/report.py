"""Build `report.json`, `.md`, `.csv` (+ `report-classes.csv`) and `.html` for a run directory,
from the JSON stages wrote.

This package reads files only (no torch, no compress/targets imports): one row per artifact under
`artifacts/*/` (manifest.json + eval.json + bench.json), plus the fp32 teacher from
`teacher/eval.json` as the reference row. A file the report reads that is not what a stage writes
(not JSON, not an object, `{}`, a half-written eval.json, a manifest without its target) stops
the report with a one-line UserError naming the file, and nothing is written; so does a folder
with nothing to report. `notes` (shown in every format) are for legitimate partial runs only: a
target the parity gate refused, a step that has not run yet, artifacts benchmarked on two hosts.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, atomic_write_text
from edgecompress.reports.classes import (
    CLASSES_CSV,
    class_section,
    classes_markdown,
    render_classes_csv,
)
from edgecompress.reports.data import data_markdown, data_section
from edgecompress.reports.files import check_bench, check_eval, check_numbers, check_run_eval
from edgecompress.reports.findings import collect_findings, stage_findings
from edgecompress.reports.host import describe_host, host_items, host_summary
from edgecompress.reports.html import render_html
from edgecompress.reports.kernels import kernels_cell, read_kernels
from edgecompress.reports.levers import run_levers
from edgecompress.reports.pareto import pareto_front
from edgecompress.reports.quantization import quantization_entries, quantization_markdown
from edgecompress.rundir import (
    BENCH_FILE,
    EVAL_FILE,
    MANIFEST_FILE,
    REPORT_FORMATS,
    RunDir,
    read_object,
)
from edgecompress.stats import format_delta

__all__ = ["artifact_row", "build_report", "device_rows", "import_device_results",
           "render_csv", "render_markdown", "stage_findings", "write_report"]

ROW_KEYS = ("target", "format", "scheme", "runtime", "threads", "size_bytes", "p50_ms", "p90_ms",
            "p99_ms", "peak_rss_mb", "accuracy", "ci95", "n", "agreement")
CSV_KEYS = ("target", "format", "scheme", "measured_on", "runtime", "threads", "size_bytes",
            "gzip_bytes", "p50_ms", "p90_ms", "p99_ms", "p50_real_ms", "peak_rss_mb", "accuracy",
            "ci95_low",
            "ci95_high", "n", "agreement", "vs_teacher_delta", "vs_teacher_ci95_low",
            "vs_teacher_ci95_high", "vs_teacher_significant", "parity_max_abs_diff",
            "on_its_own_kernels", "pareto_optimal", "artifact", "macro_f1", "truncated_share",
            "real_lengths_all_max_length")
HOST_NOTE = ("Latency was measured on this host ({host}) with each target's runtime, thread count "
             "and input shape — not on the device itself. Use it to compare artifacts, and the "
             "bundle runner on the real device for absolute numbers. p50 / p90 ms: batch 1 at "
             "the target's full sequence length (128 tokens); real lengths: 200 test sentences "
             "at their own token counts, as the artifact runs them (ONNX unpadded, TFLite on the "
             "shortest signature that holds the sentence, or padded to 128 with one signature).")


def load_artifact(folder: Path) -> dict:
    """manifest / eval / bench of one artifact folder, checked; UserError naming a bad file.
    A missing eval.json or bench.json (the step has not run yet) reads as {}."""
    path, evaluation, bench = folder / MANIFEST_FILE, folder / EVAL_FILE, folder / BENCH_FILE
    manifest = read_object(path)
    if not manifest:
        raise UserError(f"{path} is empty ({{}}): not an artifact manifest")
    if not isinstance(manifest.get("target"), str) or not manifest["target"]:
        raise UserError(f"{path} lacks a 'target': not an artifact manifest")
    budgets = manifest.get("budgets")
    if budgets is not None and not isinstance(budgets, dict):
        raise UserError(f"{path}: 'budgets' should be an object")
    check_numbers(budgets or {}, ("latency_ms",), f"{path}: budgets")
    files = {"manifest": manifest, "eval": read_object(evaluation), "bench": read_object(bench)}
    if evaluation.exists():
        check_run_eval(files["eval"], str(evaluation))
    if bench.exists():
        check_bench(files["bench"], str(bench))
        if files["bench"].get("p50_ms") is None:
            raise UserError(f"{bench} lacks 'p50_ms': not a finished benchmark (half-written "
                            "or edited)")
    return files


def artifact_row(folder: Path, files: dict | None = None) -> dict:
    """One report row from an artifact folder; missing eval/bench leave their fields None."""
    files = files or load_artifact(folder)
    manifest, evaluation, bench = files["manifest"], files["eval"], files["bench"]
    parity = manifest.get("parity") if isinstance(manifest.get("parity"), dict) else {}
    return {
        "target": manifest.get("target"), "format": manifest.get("format"),
        "scheme": manifest.get("scheme"), "runtime": manifest.get("runtime"),
        "threads": bench.get("threads", manifest.get("threads")),
        "artifact": str(folder / str(manifest.get("artifact", ""))),
        "size_bytes": bench.get("size_bytes", manifest.get("size_bytes")),
        "gzip_bytes": bench.get("gzip_bytes"),
        "p50_ms": bench.get("p50_ms"), "p90_ms": bench.get("p90_ms"),
        "p99_ms": bench.get("p99_ms"), "peak_rss_mb": bench.get("peak_rss_mb"),
        "p50_real_ms": bench.get("p50_real_ms"), "real_shape": bench.get("real_shape"),
        "accuracy": evaluation.get("accuracy"), "ci95": evaluation.get("ci95"),
        "n": evaluation.get("n"), "agreement": evaluation.get("agreement"),
        "vs_teacher": evaluation.get("vs_teacher"),
        "parity_max_abs_diff": parity.get("max_abs_diff"),
        "parity_agreement": parity.get("agreement"),
        # the gate's 95 % interval on it, where the gate decided on one (an int8 gate)
        "parity_agreement_ci95": parity.get("agreement_ci95"),
        "budgets": manifest.get("budgets"), "measured_on": "host",
        "kernels": read_kernels(folder),  # `edgecompress verify` on the target's ISA, emulated
        "macro_f1": evaluation.get("macro_f1"), "truncated": evaluation.get("truncated"),
        "real_lengths": bench.get("real_lengths"),
    }


def _artifacts(run_dir: Path, notes: list[str]) -> list[tuple[Path, dict]]:
    """(folder, files) per artifact; a step not run yet (no eval.json / bench.json) is a note."""
    loaded = []
    run = RunDir(run_dir)
    for target in run.artifact_targets():
        folder = run.artifact_dir(target)
        loaded.append((folder, load_artifact(folder)))
        missing = [f"{name} ({what})" for name, what in ((EVAL_FILE, "not evaluated yet"),
                                                         (BENCH_FILE, "not benchmarked yet"))
                   if not (folder / name).exists()]
        if missing:
            notes.append(f"{target}: no {' and no '.join(missing)}; its cells show —")
    return loaded


def _device_row(path: Path, data: dict) -> dict:
    """A device-results JSON as a report row; UserError naming the file when it is not one."""
    check_bench(check_eval(data, str(path)), str(path))
    missing = [key for key in ("target", "p50_ms") if data.get(key) is None]
    if missing or not isinstance(data["target"], str):
        raise UserError(f"{path} lacks {', '.join(missing) or 'a target name'}: not a bundle "
                        "runner's results")
    return {**{key: None for key in ROW_KEYS}, **{k: data.get(k) for k in ROW_KEYS},
            "measured_on": "device", "device": data.get("device")}


def device_rows(run_dir: Path) -> list[dict]:
    """Rows from on-device measurements imported with `report --device-results`; UserError
    naming a file that is not a bundle runner's results."""
    return [_device_row(path, read_object(path))
            for path in sorted(RunDir(run_dir).device_dir.glob("*.json"))]


def refused_targets(run_dir: Path, notes: list[str]) -> list[dict]:
    """[{target, reason}] of the targets whose artifact a run refused (artifacts/<t>/refused.json,
    written when the parity gate said no); each gets a line in `notes` too."""
    refused = []
    run = RunDir(run_dir)
    for path in (run.refused_file(target) for target in run.refused_targets()):
        data = read_object(path)
        if not isinstance(data.get("reason"), str):
            raise UserError(f"{path} lacks a 'reason': not a refusal record")
        entry = {"target": data.get("target") or path.parent.name,
                 "reason": str(data.get("reason") or "no reason recorded")}
        refused.append(entry)
        notes.append(f"{entry['target']}: refused by the parity gate, no artifact kept "
                     f"({entry['reason'].rsplit(': ', 1)[-1]}; {path.relative_to(run_dir)})")
    return refused


def _teacher(run_dir: Path) -> dict:
    path = RunDir(run_dir).teacher_eval
    return check_run_eval(read_object(path), str(path)) if path.exists() else {}


def _run_record(run_dir: Path, notes: list[str]) -> dict:
    run = RunDir(run_dir)
    if not run.run_file.exists():
        notes.append("run.json is missing: model and dataset unknown")
        return {}
    record = run.read_run()
    if not record:
        raise UserError(f"{run.run_file} is empty ({{}}): not written by a run")
    return record


def build_report(run_dir: Path, pending_device: list[dict] = ()) -> dict:
    """The report as a dict (`pending_device`: device rows about to be imported); raises
    UserError naming the file when one that the report reads is not what a stage writes, and
    when the folder holds nothing to report (no artifact, no refused target, no device row)."""
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    notes: list[str] = []
    run, teacher = _run_record(run_dir, notes), _teacher(run_dir)
    artifacts, refused = _artifacts(run_dir, notes), refused_targets(run_dir, notes)
    rows = ([artifact_row(folder, files) for folder, files in artifacts] + device_rows(run_dir)
            + list(pending_device))
    if not rows and not refused:
        what = "only teacher/eval.json" if teacher else "no teacher/eval.json either"
        raise UserError(f"{run_dir}: nothing to report: no artifacts/*/manifest.json and no "
                        f"refused target ({what}); not a run directory, or no target "
                        "exported yet")
    host, host_notes = host_summary([(f["manifest"]["target"], f["bench"]) for _, f in artifacts])
    evaluated = [(f["manifest"]["target"], f["eval"] and {
        "format": f["manifest"].get("format"), "scheme": f["manifest"].get("scheme"), **f["eval"]})
        for _, f in artifacts]
    findings = collect_findings(run_dir)
    quantization = quantization_entries([folder for folder, _ in artifacts])
    return {"run": run, "teacher": teacher or None, "rows": rows, "pareto": pareto_front(rows),
            "findings": findings, "host": host, "levers": run_levers(run_dir),
            "refused": refused, "latency_note": HOST_NOTE.format(host=describe_host(host)),
            "quantization": quantization, "data": data_section(teacher, evaluated, rows),
            "classes": class_section(teacher, evaluated),
            "notes": list(dict.fromkeys(notes + host_notes))}


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(value * scale, spec)


def accuracy_cell(row: dict) -> str:
    """'82.15% [80.4%, 83.8%]', the accuracy alone when there is no interval, or '—'."""
    if row.get("accuracy") is None:
        return "—"
    low, high = row.get("ci95") or (None, None)
    interval = "" if low is None else f" [{low:.1%}, {high:.1%}]"
    return f"{row['accuracy']:.2%}{interval}"


def delta_cell(row: dict) -> str:
    """The paired accuracy difference vs the teacher ('−0.6 points [−1.4, +0.2], not
    significant'), or '—' where eval.json has no vs_teacher."""
    return format_delta(row["vs_teacher"]) if row.get("vs_teacher") else "—"


def render_markdown(report: dict) -> str:
    """Markdown: teacher line, one table row per artifact, host, notes, findings."""
    lines = ["# edgecompress report", ""]
    run = report.get("run") or {}
    if run:
        lines += [f"Model `{run.get('model')}`, dataset `{run.get('dataset')}`.", ""]
    teacher = report.get("teacher")
    if teacher:
        lines += [f"Reference: fp32 PyTorch teacher, accuracy {accuracy_cell(teacher)} "
                  f"on n = {teacher.get('n')}.", ""]
    lines += ["| target | format | scheme | size MB | p50 ms | p90 ms | p50 ms, real lengths "
              "| accuracy [95 % CI] | agreement vs fp32 teacher "
              "| Δ accuracy vs teacher, paired [95 % CI] | parity max-diff "
              "| on its own kernels | Pareto |",
              "|---|---|---|---:|---:|---:|---:|---|---:|---|---:|---|---|"]
    front = set(report.get("pareto", []))
    for i, row in enumerate(report["rows"]):
        target = str(row["target"]) + (" (device)" if row.get("measured_on") == "device" else "")
        lines.append(
            f"| {target} | {row['format']} | {row['scheme']} "
            f"| {_fmt(row['size_bytes'], '.2f', 1e-6)} | {_fmt(row['p50_ms'], '.2f')} "
            f"| {_fmt(row['p90_ms'], '.2f')} | {_fmt(row.get('p50_real_ms'), '.2f')} "
            f"| {accuracy_cell(row)} "
            f"| {_fmt(row['agreement'], '.2%')} | {delta_cell(row)} "
            f"| {_fmt(row.get('parity_max_abs_diff'), '.1e')} | {kernels_cell(row.get('kernels'))} "
            f"| {'★' if i in front else ''} |")
    host_rows = [r for r in report["rows"] if r.get("measured_on") != "device"]
    threads = ", ".join(f"{r['target']} {r['threads']}" for r in host_rows)
    lines += ["", f"> {report['latency_note']} Threads: {threads}.",
              "> ★ = Pareto-optimal in p50 latency vs accuracy across all rows.", ""]
    lines += [f"> **{r['target']}: refused by the parity gate** ({r['reason']}); no artifact kept."
              for r in report.get("refused") or []] + ([""] if report.get("refused") else [])
    lines += _markdown_levers(report.get("levers") or [])
    lines += ["## Host", ""] + [f"- **{k}**: {v}" for k, v in host_items(report.get("host"))]
    lines += [""] + data_markdown(report.get("data")) + classes_markdown(report.get("classes"))
    lines += _markdown_notes(report.get("notes") or [])
    lines += _markdown_findings(report.get("findings", []))
    lines += quantization_markdown(report.get("quantization") or [])
    return "\n".join(lines)


def _markdown_levers(levers: list[str]) -> list[str]:
    if not levers:
        return []
    return (["## How the artifacts were made", ""] + [f"- {line}" for line in levers]
            + ["- then per target: the scheme in the table; layers the accuracy fallback kept "
               "in float are under Quantization", ""])


def _markdown_notes(notes: list[str]) -> list[str]:
    return ["## Notes", ""] + [f"- {note}" for note in notes] + [""] if notes else []


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
    """One CSV line per row, flat columns (intervals split into low / high)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_KEYS, extrasaction="ignore")
    writer.writeheader()
    front = set(report.get("pareto", []))
    at_max = set((report.get("data") or {}).get("real_lengths_at_max") or [])
    for i, row in enumerate(report["rows"]):
        low, high = row.get("ci95") or (None, None)
        paired = row.get("vs_teacher") or {}
        d_low, d_high = paired.get("delta_ci95") or (None, None)
        truncated = row.get("truncated") or {}
        writer.writerow({**row, "ci95_low": low, "ci95_high": high, "pareto_optimal": i in front,
                         "truncated_share": truncated.get("share"),
                         "real_lengths_all_max_length": row.get("real_lengths") and
                         row["target"] in at_max,
                         "vs_teacher_delta": paired.get("delta"), "vs_teacher_ci95_low": d_low,
                         "on_its_own_kernels": kernels_cell(row["kernels"])
                         if row.get("kernels") else None,
                         "vs_teacher_ci95_high": d_high,
                         "vs_teacher_significant": None if d_low is None else
                         (d_low > 0 or d_high < 0)})
    return buffer.getvalue()


def _device_results(results: Path) -> tuple[Path, dict]:
    """(where it will be kept, its row) for a bundle runner's JSON, checked; nothing written."""
    if not results.is_file():
        raise UserError(f"device results not found: {results}")
    data = read_object(results)
    if not data:
        raise UserError(f"{results}: expected a JSON object from a bundle's run.py --bench")
    return results, _device_row(results, data)


def import_device_results(run_dir: Path, results: Path) -> Path:
    """Copy a bundle runner's JSON into the run so every later report keeps its rows."""
    _device_results(results)
    dest = RunDir(run_dir).device_dir / results.name
    atomic_write_json(dest, read_object(results))
    return dest


def write_report(run_dir: Path, device_results: Path | None = None) -> list[Path]:
    """Write report.json, .md, .csv, report-classes.csv and .html into `run_dir` (with
    `device_results`, first copy them into the run); returns their paths. Every check runs
    before the first write: a refusal leaves the folder as it was."""
    from edgecompress.reports.llm import is_llm_run

    if is_llm_run(run_dir) and device_results is None:
        return _write_llm_report(run_dir)
    pending = [] if device_results is None else [_device_results(device_results)[1]]
    report = build_report(run_dir, pending)
    if device_results is not None:
        import_device_results(run_dir, device_results)
    run = RunDir(run_dir)
    paths = {name: run.report_file(name) for name in REPORT_FORMATS}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["md"], render_markdown(report))
    atomic_write_text(paths["csv"], render_csv(report))
    atomic_write_text(paths["html"], render_html(report))
    classes = run_dir / CLASSES_CSV
    atomic_write_text(classes, render_classes_csv(report))
    return [*paths.values(), classes]


def _write_llm_report(run_dir: Path) -> list[Path]:
    """report.{json,md,csv,html} of an LLM run (reports/llm.py), each checked before written."""
    from edgecompress.reports.llm import (
        build_llm_report,
        render_llm_csv,
        render_llm_html,
        render_llm_markdown,
    )

    report = build_llm_report(run_dir)
    run = RunDir(run_dir)
    paths = {name: run.report_file(name) for name in REPORT_FORMATS}
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["md"], render_llm_markdown(report))
    atomic_write_text(paths["csv"], render_llm_csv(report))
    atomic_write_text(paths["html"], render_llm_html(report))
    return list(paths.values())
