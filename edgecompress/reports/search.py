"""`search.md` and `search.html` from a search's `search.json`: per target, every trial (the
front in bold), the chosen trial and its test numbers, and a plot with the trials faint and the
front bold. Reads JSON only."""

from __future__ import annotations

from html import escape
from pathlib import Path

from edgecompress.fsutil import atomic_write_text
from edgecompress.reports.host import host_items
from edgecompress.reports.html import STYLE, pareto_svg

COLUMNS = ("trial", "recipe values", "scheme", "dev accuracy", "Δ dev (points)", "p50 ms", "MB",
           "front", "test accuracy", "Δ test (points) [95 % CI]")


def budget_line(spec: dict) -> str:
    budgets = spec["budgets"]
    parts = [f"p50 ≤ {budgets['latency_ms']:g} ms" if budgets.get("latency_ms") else None,
             f"size ≤ {budgets['size_mb']:g} MB" if budgets.get("size_mb") else None,
             f"drop ≤ {budgets['max_drop']:g} points" if budgets.get("max_drop") is not None
             else None]
    return ", ".join(p for p in parts if p) or "none (the most accurate trial is chosen)"


def _values(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(the recipe as written)"


def _versus_line(part: dict, baseline: int | None) -> str | None:
    """The chosen trial against the recipe's own settings (the baseline trial), on test."""
    pick, test = part["chosen"], part["test"]
    if baseline is None or pick is None or str(baseline) not in test:
        return None
    if pick == baseline:
        return f"the recipe as written (trial {baseline}) is itself the choice"
    new, old = test[str(pick)], test[str(baseline)]
    return (f"trial {pick} vs the recipe as written (trial {baseline}), on test: accuracy "
            f"{new['accuracy']:.2%} vs {old['accuracy']:.2%}, p50 {new['p50_ms']:.2f} vs "
            f"{old['p50_ms']:.2f} ms, {new['size_bytes'] / 1e6:.2f} vs "
            f"{old['size_bytes'] / 1e6:.2f} MB")


def _cells(point: dict, summary: dict, params: dict, baseline: int | None = None) -> list[str]:
    test = summary["test"].get(str(point["trial"]))
    on_front = point["trial"] in summary["front"]
    test_cells = ["", ""] if test is None else [
        f"{test['accuracy']:.2%}",
        f"{test['delta']:+.2f} [{test['delta_ci95'][0]:+.2f}, {test['delta_ci95'][1]:+.2f}]"]
    number = str(point["trial"]) + (" (recipe)" if point["trial"] == baseline else "")
    return [number, _values(params.get(point["trial"], {})), str(point["scheme"]),
            f"{point['accuracy']:.2%}", f"{point['delta']:+.2f}", f"{point['p50_ms']:.2f}",
            f"{point['size_bytes'] / 1e6:.2f}", "yes" if on_front else "", *test_cells]


def _counts(summary: dict) -> str:
    states = [t.get("state") for t in summary["trials"]]
    return (f"{len(states)} trials: {states.count('complete')} complete, "
            f"{states.count('pruned')} pruned, {states.count('failed')} failed")


def _choice_line(target: str, part: dict) -> str:
    if part["chosen"] is not None:
        return f"chosen for {target}: trial {part['chosen']}"
    near = ", ".join(f"trial {n}" for n in part["nearest"]) or "no trial was measured"
    return f"no trial meets the budgets on {target}; nearest: {near}"


def _latency_note(summary: dict) -> str:
    if summary["workers"] <= 1:
        return "latencies measured one trial at a time"
    return (f"latencies measured while up to {summary['workers']} trials ran at once "
            "(noisier than a lone bench)")


def render_markdown(summary: dict) -> str:
    spec, params = summary["spec"], {t["number"]: t["params"] for t in summary["trials"]}
    lines = [f"# Search: {spec['recipe']['recipe']}", "",
             f"- budgets: {budget_line(spec)}", f"- {_counts(summary)}",
             f"- executor {summary['executor']}, {_latency_note(summary)}",
             f"- best.toml: trial {summary['best']}" if summary["best"] is not None
             else "- best.toml: none (no trial meets the budgets on every target)"]
    lines += [f"- {label}: {value}" for label, value in host_items(summary.get("host"))]
    for target, part in summary["targets"].items():
        versus = _versus_line(part, summary.get("baseline"))
        lines += ["", f"## {target}", "", _choice_line(target, part)]
        lines += ["", versus] if versus else []
        lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for point in part["points"]:
            cells = _cells(point, part, params, summary.get("baseline"))
            bold = point["trial"] in part["front"]
            lines.append("| " + " | ".join(f"**{c}**" if bold and c else c for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _html_table(part: dict, params: dict, baseline: int | None) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = []
    for point in part["points"]:
        css = ' class="front"' if point["trial"] in part["front"] else ""
        cells = "".join(f"<td>{escape(c)}</td>" for c in _cells(point, part, params, baseline))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(summary: dict) -> str:
    spec, params = summary["spec"], {t["number"]: t["params"] for t in summary["trials"]}
    sections = []
    for target, part in summary["targets"].items():
        rows = [{**p, "target": target} for p in part["points"]]
        front = [i for i, p in enumerate(part["points"]) if p["trial"] in part["front"]]
        teacher = next((t.get("teacher_accuracy") for t in summary["trials"]
                        if t.get("teacher_accuracy") is not None), None)
        versus = _versus_line(part, summary.get("baseline"))
        sections.append(f"<h2>{escape(target)}</h2><p>{escape(_choice_line(target, part))}</p>"
                        + (f"<p>{escape(versus)}</p>" if versus else "")
                        + f"{pareto_svg(rows, front, teacher, faint=True)}"
                        f"{_html_table(part, params, summary.get('baseline'))}")
    facts = "".join(f"<li>{escape(text)}</li>" for text in (
        f"budgets: {budget_line(spec)}", _counts(summary),
        f"executor {summary['executor']}, {_latency_note(summary)}",
        *(f"{label}: {value}" for label, value in host_items(summary.get("host")))))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>search "
            f"{escape(spec['recipe']['recipe'])}</title><style>{STYLE}</style></head><body>"
            f"<h1>Search: {escape(spec['recipe']['recipe'])}</h1><ul class=\"note\">{facts}</ul>"
            f"{''.join(sections)}</body></html>\n")


def write_search_report(out: Path, summary: dict) -> list[Path]:
    paths = [out / "search.md", out / "search.html"]
    atomic_write_text(paths[0], render_markdown(summary))
    atomic_write_text(paths[1], render_html(summary))
    return paths
