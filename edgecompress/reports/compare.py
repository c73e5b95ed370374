"""`edgecompress report compare OLD NEW`: what changed between two runs, and is it a regression.

Rows are matched by (target, format, scheme, measured_on). A regression is an accuracy drop of
more than `max_accuracy_drop` points, a p50 latency increase of more than `max_latency_increase`
(a fraction: 0.10 = 10 %), or an artifact that OLD had and NEW lacks. CI scripts use the exit code.

Paired accuracy gate: when both rows carry `vs_teacher` (the paired difference vs the fp32
teacher, with its 95 % interval) against the same teacher (equal teacher accuracy and n), the
change is NEW's delta minus OLD's, and its interval combines the two paired intervals by
square-and-add (MOVER; it treats the runs as independent, which is conservative when both were
scored on the same test set). Such a drop is a regression only when it exceeds
`max_accuracy_drop` AND its interval excludes 0; a larger drop whose interval holds 0 is a
warning. Rows without paired intervals use the plain accuracy drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.reports.host import host_warnings
from edgecompress.rundir import RunDir, read_object


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
    """A run directory (its report.json, built if missing) or a report.json file.

    Raises UserError (one line) when the path is missing or the file is not a report.json.
    """
    from edgecompress.reports.report import build_report

    if path.is_dir():
        if not RunDir(path).report_file("json").exists():
            return build_report(path)
        path = RunDir(path).report_file("json")
    if not path.exists():
        raise UserError(f"report not found: {path}")
    data = read_object(path, missing_ok=False)
    rows = data.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path} is not a report.json (no 'rows' list of objects)")
    return data


def _key(row: dict) -> tuple:
    return (row.get("target"), row.get("format"), row.get("scheme"),
            row.get("measured_on", "host"))


def _number(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None


def _delta(old, new):
    old, new = _number(old), _number(new)
    return None if old is None or new is None else new - old


def _paired(row: dict) -> tuple[float, float, float, object] | None:
    """(delta, low, high, n) in points from a row's vs_teacher, or None when it has none."""
    paired = row.get("vs_teacher")
    if not isinstance(paired, dict):
        return None
    delta, interval = _number(paired.get("delta")), paired.get("delta_ci95")
    if delta is None or not isinstance(interval, list) or len(interval) != 2:
        return None
    low, high = _number(interval[0]), _number(interval[1])
    return None if low is None or high is None else (delta, low, high, paired.get("n"))


def paired_change(a: dict, b: dict) -> tuple[float, float, float] | None:
    """(NEW delta - OLD delta, low, high) in points from the rows' paired intervals vs the
    teacher, or None when either lacks one or they were scored on different n."""
    old, new = _paired(a), _paired(b)
    if old is None or new is None or old[3] != new[3]:
        return None
    change = new[0] - old[0]
    low = change - math.hypot(new[0] - new[1], old[2] - old[0])
    high = change + math.hypot(new[2] - new[0], old[0] - old[1])
    return change, low, high


def same_teacher(old: dict, new: dict) -> bool:
    """Both reports name a teacher with the same accuracy and n (so deltas share a reference)."""
    a, b = old.get("teacher") or {}, new.get("teacher") or {}
    return (isinstance(a, dict) and isinstance(b, dict) and a.get("accuracy") is not None
            and a.get("accuracy") == b.get("accuracy") and a.get("n") == b.get("n"))


def _accuracy_verdict(name: str, acc, paired, limit: float) -> tuple[list[str], list[str]]:
    """(regressions, warnings) of one row's accuracy change (acc: fraction; paired: points)."""
    if paired is not None:
        change, low, high = paired
        text = f"{name}: accuracy {change:+.2f} points [{low:+.2f}, {high:+.2f}]"
        if -change <= limit:
            return [], []
        if high < 0:
            return [f"{text} (allowed -{limit:g}; paired interval excludes 0)"], []
        return [], [f"{text} exceeds -{limit:g} but its paired interval holds 0: "
                    "not counted as a regression"]
    if acc is not None and -acc * 100 > limit:
        return [f"{name}: accuracy {acc * 100:+.2f} points (allowed -{limit:g})"], []
    return [], []


def compare_reports(old: dict, new: dict,
                    limits: Thresholds) -> tuple[list[dict], list[str], list[str]]:
    """(one diff per matched or missing row, regressions, warnings) — all one-line strings.

    Warnings: the runs come from different (or unrecorded) hosts; a drop beyond the threshold
    whose paired interval holds 0; teachers that differ, so paired intervals are not used.
    """
    old_rows = {_key(r): r for r in old.get("rows", [])}
    new_rows = {_key(r): r for r in new.get("rows", [])}
    teacher_ok = same_teacher(old, new)
    diffs, regressions = [], []
    warnings = host_warnings(old.get("host"), new.get("host"))
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
        diff, found, warned = _row_diff(name, a, b, limits, teacher_ok)
        diffs.append(diff)
        regressions += found
        warnings += warned
    if not teacher_ok and any(map(_paired, old_rows.values())) \
            and any(map(_paired, new_rows.values())):
        warnings.append("OLD and NEW have different teachers (accuracy or n): accuracy gated on "
                        "the plain difference, not the paired intervals")
    return diffs, regressions, warnings


def _row_diff(name: str, a: dict, b: dict, limits: Thresholds, teacher_ok: bool):
    acc = _delta(a.get("accuracy"), b.get("accuracy"))
    lat = _delta(a.get("p50_ms"), b.get("p50_ms"))
    size = _delta(a.get("size_bytes"), b.get("size_bytes"))
    rel = lat / a["p50_ms"] if lat is not None and a["p50_ms"] else None
    paired = paired_change(a, b) if teacher_ok else None
    diff = {"artifact": name, "status": "both", "accuracy_points": _points(acc),
            "accuracy_points_ci95": None if paired is None else [paired[1], paired[2]],
            "accuracy_gate": "plain" if paired is None else "paired",
            "p50_ms": lat, "p50_relative": rel, "size_bytes": size}
    regressions, warnings = _accuracy_verdict(name, acc, paired, limits.max_accuracy_drop)
    if rel is not None and rel > limits.max_latency_increase:
        regressions.append(f"{name}: p50 latency {rel:+.1%} "
                           f"(allowed +{limits.max_latency_increase:.0%})")
    return diff, regressions, warnings


def _points(delta):
    return None if delta is None else delta * 100
