"""The report's "Findings of earlier stages", from manifests' `findings` and stages/*/stage.json.

A stage record that cannot be read or has an unexpected layout stops the report with one line
naming it (a run writes these files; one that is not what it wrote is not a run's).
"""

from __future__ import annotations

from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.reports.files import check_vs_teacher
from edgecompress.rundir import MANIFEST_FILE, STAGE_FILE, RunDir, read_object
from edgecompress.stats import format_delta


def _pct(value) -> str:
    return "—" if value is None else f"{value:.2%}"


def _ci(metrics: dict) -> str:
    low, high = metrics.get("ci95") or (None, None)
    return "—" if low is None else f"[{low:.1%}, {high:.1%}]"


def collect_findings(run_dir: Path) -> list[dict]:
    """What earlier stages found: `findings` lists left in manifests, and the stage records
    (pruning's accuracy before recovery and speedup gate, distillation's test accuracy, paired
    deltas vs the teacher). Raises UserError naming a file that cannot be read."""
    findings = []
    for path in sorted(run_dir.glob(f"**/{MANIFEST_FILE}")):
        manifest = read_object(path)
        listed = manifest.get("findings") or []
        for finding in listed if isinstance(listed, list) else []:
            if isinstance(finding, dict) and finding.get("title"):
                findings.append({"source": str(path.parent.relative_to(run_dir)), **finding})
    for path in RunDir(run_dir).step_records():
        findings += read_layout(lambda path=path: stage_findings(read_object(path), str(path)),
                                path, run_dir)
    return findings


def read_layout(load, path: Path, run_dir: Path):
    """`load()`, with a record whose layout is not the one its stage writes (a KeyError,
    TypeError... while reading it) turned into one UserError line naming the file."""
    try:
        return load()
    except UserError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path.relative_to(run_dir)} has an unexpected layout "
                        f"({type(err).__name__}: {' '.join(str(err).split())[:120]}): not the "
                        "record its stage writes") from None


def stage_findings(record: dict, where: str = STAGE_FILE) -> list[dict]:
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
    return found + _paired_findings(name, metrics, where)


def paired_deltas(metrics: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Every `vs_teacher` object at any depth of a stage's metrics, with its dotted path."""
    found = []
    for key, value in metrics.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key == "vs_teacher":
            found.append((prefix or "metrics", value))
        elif isinstance(value, dict):
            found += paired_deltas(value, path)
    return found


def _paired_findings(name, metrics: dict, where: str) -> list[dict]:
    deltas = paired_deltas(metrics)
    if not deltas:
        return []
    rows = []
    for path, delta in deltas:
        check_vs_teacher(delta, f"{where}: {path}.vs_teacher")
        p_value = delta.get("p_value")
        rows.append({"measured": path, "Δ accuracy vs teacher [95 % CI]": format_delta(delta),
                     "n": delta.get("n"), "disagreements": delta.get("disagreements"),
                     "McNemar p": "—" if p_value is None else f"{p_value:.3g}"})
    return [{"title": f"{name}: paired accuracy difference vs the fp32 teacher", "rows": rows}]
