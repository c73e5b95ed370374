"""`edgecompress report compare OLD NEW`: what changed between two runs, and is it a regression.

Rows are matched by (target, format, scheme, measured_on). A regression is an accuracy drop of
more than `max_accuracy_drop` points, a p50 latency increase of more than `max_latency_increase`
(a fraction: 0.10 = 10 %), or an artifact that OLD had and NEW lacks. CI scripts use the exit code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError


@dataclass(frozen=True)
class Thresholds:
    max_accuracy_drop: float = 1.0  # points of accuracy (0.5 = half a percentage point)
    max_latency_increase: float = 0.10  # fraction of the old p50

    def __post_init__(self) -> None:
        if self.max_accuracy_drop < 0:
            raise UserError(f"--max-accuracy-drop must be >= 0, got {self.max_accuracy_drop}")
        if self.max_latency_increase < 0:
            raise UserError(f"--max-latency-increase must be >= 0, got "
                            f"{self.max_latency_increase}")


def load_report(path: Path) -> dict:
    """A run directory (its report.json, built if missing) or a report.json file."""
    from edgecompress.reports.report import build_report

    if path.is_dir():
        file = path / "report.json"
        return json.loads(file.read_text()) if file.exists() else build_report(path)
    if not path.exists():
        raise UserError(f"report not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a report.json: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise UserError(f"{path} is not a report.json (no 'rows' list)")
    return data


def _key(row: dict) -> tuple:
    return (row.get("target"), row.get("format"), row.get("scheme"),
            row.get("measured_on", "host"))


def _delta(old, new):
    return None if old is None or new is None else new - old


def compare_reports(old: dict, new: dict, limits: Thresholds) -> tuple[list[dict], list[str]]:
    """(one diff per matched or missing row, the regressions found as one-line strings)."""
    old_rows = {_key(r): r for r in old.get("rows", [])}
    new_rows = {_key(r): r for r in new.get("rows", [])}
    diffs, regressions = [], []
    for key in sorted(set(old_rows) | set(new_rows), key=str):
        name = " / ".join(str(k) for k in key[:3])
        a, b = old_rows.get(key), new_rows.get(key)
        if b is None:
            regressions.append(f"{name}: missing from NEW")
            diffs.append({"artifact": name, "status": "missing"})
            continue
        if a is None:
            diffs.append({"artifact": name, "status": "new"})
            continue
        acc = _delta(a.get("accuracy"), b.get("accuracy"))
        lat = _delta(a.get("p50_ms"), b.get("p50_ms"))
        size = _delta(a.get("size_bytes"), b.get("size_bytes"))
        rel = lat / a["p50_ms"] if lat is not None and a["p50_ms"] else None
        diffs.append({"artifact": name, "status": "both", "accuracy_points": _points(acc),
                      "p50_ms": lat, "p50_relative": rel, "size_bytes": size})
        if acc is not None and -acc * 100 > limits.max_accuracy_drop:
            regressions.append(f"{name}: accuracy {acc * 100:+.2f} points "
                               f"(allowed -{limits.max_accuracy_drop:g})")
        if rel is not None and rel > limits.max_latency_increase:
            regressions.append(f"{name}: p50 latency {rel:+.1%} "
                               f"(allowed +{limits.max_latency_increase:.0%})")
    return diffs, regressions


def _points(delta):
    return None if delta is None else delta * 100
