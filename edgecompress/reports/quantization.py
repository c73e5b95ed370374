"""The report's "Quantization" section, from each artifact folder's `quantize.json`.

Reads JSON only: what the quantize stage wrote (per-layer blame, the fallback loop's steps, the
preflight of integer-only targets).
"""

from __future__ import annotations

from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.rundir import read_object

REPORT_FILE = "quantize.json"


def quantization_entries(folders: list[Path]) -> list[dict]:
    """One entry per artifact folder holding a quantize.json: target, scheme, blame, fallback.
    Raises UserError naming a quantize.json that cannot be read or is empty."""
    entries = []
    for folder in folders:
        path = folder / REPORT_FILE
        data = read_object(path)
        if not data:
            if path.exists():
                raise UserError(f"{path} is empty ({{}}): not the quantize stage's record")
            continue
        entries.append({"target": data.get("target"), "scheme": data.get("scheme"),
                        "blame": data.get("blame") or [], "fallback": data.get("fallback"),
                        "preflight": data.get("preflight")})
    return entries


def quantization_markdown(entries: list[dict]) -> list[str]:
    """Markdown lines: per target, preflight, fallback steps (with their cost), per-layer blame."""
    lines = []
    for entry in entries:
        lines += [f"## Quantization: {entry['target']} ({entry['scheme']})", ""]
        lines += _preflight(entry.get("preflight")) + _fallback(entry.get("fallback"))
        if entry["blame"]:
            lines += ["Per-layer error vs torch on calibration inputs (worst first):", "",
                      "| layer | SNR dB | relative MSE |", "|---|---:|---:|"]
            lines += [f"| {b['layer']} | {b['snr_db']:.1f} | {b['rel_mse']:.2e} |"
                      for b in entry["blame"]]
            lines.append("")
    return lines


def _preflight(checks: dict | None) -> list[str]:
    if not checks:
        return []
    ops = ", ".join(f"{o['op']} ×{o['count']}" for o in checks["float_ops"][:8]) or "none"
    need = " The target requires integer-only." if checks.get("required") else ""
    return [f"Preflight: {checks['float_op_count']} float ops of {checks['ops_total']} "
            f"({ops}).{need}", ""]


def _fallback(fallback: dict | None) -> list[str]:
    if not fallback:
        return []
    kept = ", ".join(f"`{name}`" for name in fallback["float_layers"]) or "none"
    lines = [f"Fallback (max drop {fallback['allowed_drop_points']:g} points vs fp32 "
             f"{fallback['reference_accuracy']:.2%} on dev, n = {fallback['dev_n']}): "
             f"{'met' if fallback['met'] else 'not met'}; kept in float: {kept}.", "",
             "| layers in float | dev accuracy | drop (points) | size MB | p50 ms |",
             "|---|---:|---:|---:|---:|"]
    for step in fallback["steps"]:
        names = ", ".join(step["float_layers"]) or "—"
        lines.append(f"| {names} | {step['accuracy']:.2%} | {step['drop_points']:.2f} "
                     f"| {step['size_bytes'] / 1e6:.2f} | {step['p50_ms']:.2f} |")
    lines.append("")
    return lines + ([fallback["note"], ""] if fallback.get("note") else [])


def quantization_findings(entries: list[dict]) -> list[dict]:
    """The quantize stage's preflight, fallback steps and per-layer blame, as findings."""
    found = []
    for entry in entries:
        title = f"Quantization: {entry['target']} ({entry['scheme']})"
        checks = entry.get("preflight") or {}
        if checks:
            ops = ", ".join(f"{o['op']} x{o['count']}" for o in checks.get("float_ops", [])[:8])
            found.append({"title": f"{title} — preflight",
                          "text": f"{checks.get('float_op_count')} float ops of "
                                  f"{checks.get('ops_total')} ({ops or 'none'})"})
        fallback = entry.get("fallback") or {}
        if fallback.get("steps"):
            rows = [{"layers in float": ", ".join(s["float_layers"]) or "—",
                     "dev accuracy": f"{s['accuracy']:.2%}", "drop (points)":
                     f"{s['drop_points']:.2f}", "size MB": f"{s['size_bytes'] / 1e6:.2f}",
                     "p50 ms": f"{s['p50_ms']:.2f}"} for s in fallback["steps"]]
            found.append({"title": f"{title} — fallback "
                                   f"({'met' if fallback.get('met') else 'not met'})",
                          "rows": rows})
        if entry.get("blame"):
            rows = [{"layer": b["layer"], "SNR dB": f"{b['snr_db']:.1f}",
                     "relative MSE": f"{b['rel_mse']:.2e}"} for b in entry["blame"]]
            found.append({"title": f"{title} — per-layer blame (worst first)", "rows": rows})
    return found
