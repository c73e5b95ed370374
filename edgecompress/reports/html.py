"""A self-contained `report.html`: inline SVG Pareto plot, the table, the findings. No scripts,
fonts or styles from the network, so it opens anywhere (including on an air-gapped box).

Plot: x = p50 latency (ms, log scale when the range is wide), y = accuracy (%); marker area ~ file
size, colour = target, shape = format (circle ONNX, square TFLite, diamond ExecuTorch),
hollow = device-measured;
Pareto-optimal artifacts get a black ring and are joined by a dashed line; each target's latency
budget is a dashed vertical line in its colour; the fp32 teacher's accuracy a grey line.
"""

from __future__ import annotations

import math
from html import escape

from edgecompress.reports.classes import classes_html
from edgecompress.reports.data import data_lines
from edgecompress.reports.host import host_items
from edgecompress.reports.kernels import kernels_cell
from edgecompress.reports.quantization import quantization_findings
from edgecompress.stats import format_delta

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 820, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 30, 60  # margins; the legend sits in the right one


def _colours(rows: list[dict]) -> dict[str, str]:
    targets = sorted({row["target"] for row in rows if row.get("target")})
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(targets)}


class _Axes:
    """Maps (latency ms, accuracy) to SVG pixels."""

    def __init__(self, latencies: list[float], accuracies: list[float]):
        lo, hi = min(latencies), max(latencies)
        self.log = hi / max(lo, 1e-9) > 8
        pad = 1.25 if self.log else 0.08 * (hi - lo or hi or 1)
        self.x0, self.x1 = ((lo / pad, hi * pad) if self.log else (max(0.0, lo - pad), hi + pad))
        a_lo, a_hi = min(accuracies), max(accuracies)
        spread = max(a_hi - a_lo, 0.02)
        self.y0, self.y1 = a_lo - 0.15 * spread, a_hi + 0.15 * spread

    def _fx(self, v: float) -> float:
        return math.log(v) if self.log else v

    def x(self, latency: float) -> float:
        span = self._fx(self.x1) - self._fx(self.x0)
        return LEFT + (self._fx(latency) - self._fx(self.x0)) / span * (WIDTH - LEFT - RIGHT)

    def y(self, accuracy: float) -> float:
        return TOP + (self.y1 - accuracy) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def x_ticks(self) -> list[float]:
        if not self.log:
            step = (self.x1 - self.x0) / 5
            return [self.x0 + i * step for i in range(6)]
        ticks = [m * 10 ** e for e in range(-1, 4) for m in (1, 2, 5)]
        return [t for t in ticks if self.x0 <= t <= self.x1]

    def y_ticks(self) -> list[float]:
        step = (self.y1 - self.y0) / 5
        return [self.y0 + i * step for i in range(6)]


def _marker(row: dict, x: float, y: float, colour: str, radius: float,
            opacity: float = 0.7) -> str:
    hollow = row.get("measured_on") == "device"
    fill = "none" if hollow else colour
    title = escape(f"{row['target']} · {row['format']} · {row['scheme']} — "
                   f"{row['p50_ms']:.2f} ms, {row['accuracy']:.2%}, "
                   f"{(row.get('size_bytes') or 0) / 1e6:.1f} MB"
                   + (" (device-measured)" if hollow else ""))
    common = (f'fill="{fill}" fill-opacity="{opacity}" stroke="{colour}" '
              f'stroke-opacity="{min(1.0, opacity + 0.3):.2f}" stroke-width="2" '
              f'class="point" data-target="{escape(str(row["target"]))}"')
    return f"<g><title>{title}</title>{_shape(row.get('format'), x, y, radius, common)}</g>"


def _shape(fmt: str | None, x: float, y: float, radius: float, attrs: str) -> str:
    """The format's marker centred on (x, y): square TFLite, diamond pte, circle otherwise."""
    if fmt == "tflite":
        return (f'<rect x="{x - radius:.1f}" y="{y - radius:.1f}" width="{2 * radius:.1f}" '
                f'height="{2 * radius:.1f}" {attrs}/>')
    if fmt == "pte":
        points = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in
                          ((0, -radius), (radius, 0), (0, radius), (-radius, 0)))
        return f'<polygon points="{points}" {attrs}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" {attrs}/>'


def _grid(axes: _Axes) -> list[str]:
    parts = []
    for t in axes.x_ticks():
        x = axes.x(t)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" '
                     f'stroke="#eee"/><text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                     f'text-anchor="middle" font-size="11">{t:.3g}</text>')
    for t in axes.y_ticks():
        y = axes.y(t)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#eee"/><text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{t:.1%}</text>')
    scale = " (log scale)" if axes.log else ""
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 15}" text-anchor="middle" '
                 f'font-size="12">p50 latency, ms{scale}</text>')
    parts.append(f'<text x="16" y="{(TOP + HEIGHT - BOTTOM) / 2}" font-size="12" '
                 f'transform="rotate(-90 16 {(TOP + HEIGHT - BOTTOM) / 2})" '
                 f'text-anchor="middle">accuracy</text>')
    return parts


def _budgets(rows: list[dict], axes: _Axes, colours: dict[str, str]) -> list[str]:
    parts, seen = [], set()
    for row in rows:
        budget = (row.get("budgets") or {}).get("latency_ms")
        if budget is None or row["target"] in seen or not axes.x0 <= budget <= axes.x1:
            continue
        seen.add(row["target"])
        x = axes.x(budget)
        parts.append(f'<line class="budget" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
                     f'y2="{HEIGHT - BOTTOM}" stroke="{colours[row["target"]]}" '
                     f'stroke-dasharray="6 4"><title>{escape(row["target"])} latency budget '
                     f'{budget:g} ms</title></line>')
    return parts


def _legend(colours: dict[str, str], rows: list[dict]) -> list[str]:
    x, y = WIDTH - RIGHT + 20, TOP + 10
    parts = [f'<text x="{x}" y="{y}" font-size="12" font-weight="bold">target</text>']
    for target, colour in colours.items():
        y += 18
        parts.append(f'<circle cx="{x + 6}" cy="{y - 4}" r="6" fill="{colour}"/>'
                     f'<text x="{x + 18}" y="{y}" font-size="12">{escape(target)}</text>')
    y += 28
    parts.append(f'<text x="{x}" y="{y}" font-size="12" font-weight="bold">format</text>')
    formats = sorted({row.get("format") for row in rows if row.get("format")})
    for fmt in formats:
        y += 18
        shape = _shape(fmt, x + 6, y - 4, 6, 'fill="#777"')
        parts.append(f'{shape}<text x="{x + 18}" y="{y}" font-size="12">{escape(fmt)}</text>')
    y += 28
    parts.append(f'<circle cx="{x + 6}" cy="{y - 4}" r="7" fill="none" stroke="black" '
                 f'stroke-width="2.5"/><text x="{x + 18}" y="{y}" font-size="12">'
                 f'Pareto-optimal</text>')
    y += 18
    parts.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 12}" y2="{y - 4}" stroke="#333" '
                 f'stroke-dasharray="4 3"/><text x="{x + 18}" y="{y}" font-size="12">'
                 f'latency budget</text>')
    y += 18
    parts.append(f'<text x="{x}" y="{y}" font-size="11">marker area ∝ file size</text>')
    return parts


def pareto_svg(rows: list[dict], front: list[int], teacher_accuracy: float | None, *,
               faint: bool = False) -> str:
    """The plot as an inline <svg>; rows without latency and accuracy are left out. With
    `faint`, points off the front are drawn pale (a search's trials behind its front)."""
    plotted = [(i, r) for i, r in enumerate(rows)
               if r.get("p50_ms") is not None and r.get("accuracy") is not None]
    if not plotted:
        return '<p class="empty">No artifact has both a latency and an accuracy yet.</p>'
    accuracies = [r["accuracy"] for _, r in plotted]
    if teacher_accuracy is not None:
        accuracies.append(teacher_accuracy)
    budgets = [b for r in rows if (b := (r.get("budgets") or {}).get("latency_ms"))]
    axes = _Axes([r["p50_ms"] for _, r in plotted] + budgets, accuracies)
    colours = _colours(rows)
    biggest = max((r.get("size_bytes") or 1) for _, r in plotted)
    parts = [f'<svg id="pareto" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
             f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
             f'height="{HEIGHT - TOP - BOTTOM}" fill="white" stroke="#999"/>', *_grid(axes),
             *_budgets(rows, axes, colours)]
    if teacher_accuracy is not None:
        y = axes.y(teacher_accuracy)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#888" stroke-dasharray="2 3"><title>fp32 teacher accuracy '
                     f'{teacher_accuracy:.2%}</title></line>')
    on_front = sorted((rows[i] for i in front), key=lambda r: r["p50_ms"])
    if len(on_front) > 1:
        path = " ".join(f"{axes.x(r['p50_ms']):.1f},{axes.y(r['accuracy']):.1f}" for r in on_front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="black" '
                     f'stroke-dasharray="5 4"/>')
    for i, row in plotted:
        x, y = axes.x(row["p50_ms"]), axes.y(row["accuracy"])
        radius = 5 + 13 * math.sqrt((row.get("size_bytes") or 0) / biggest)
        if i in front:
            parts.append(f'<circle class="pareto" cx="{x:.1f}" cy="{y:.1f}" r="{radius + 4:.1f}" '
                         f'fill="none" stroke="black" stroke-width="2.5"/>')
        opacity = 0.15 if faint and i not in front else 0.7
        parts.append(_marker(row, x, y, colours[row["target"]], radius, opacity))
    parts += _legend(colours, rows)
    parts.append("</svg>")
    return "\n".join(parts)


STYLE = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:12px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}tr.front td{font-weight:bold}
.note{color:#555;font-size:13px}.device{color:#8c564b}"""

COLUMNS = (("target", "l"), ("format", "l"), ("scheme", "l"), ("measured on", "l"),
           ("size MB", ""), ("p50 ms", ""), ("p90 ms", ""), ("p50 ms, real lengths", ""),
           ("accuracy [95 % CI]", ""),
           ("agreement vs teacher", ""), ("Δ accuracy vs teacher, paired [95 % CI]", ""),
           ("parity max-diff", ""), ("on its own kernels", "l"), ("Pareto", "l"))


def _cell(value, spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(value * scale, spec)


def _row_cells(row: dict, on_front: bool) -> list[str]:
    accuracy = "—"
    if row.get("accuracy") is not None:
        low, high = row.get("ci95") or (None, None)
        accuracy = f"{row['accuracy']:.2%}"
        if low is not None:
            accuracy += f" [{low:.1%}, {high:.1%}]"
    return [str(row.get("target")), str(row.get("format")), str(row.get("scheme")),
            row.get("measured_on", "host"), _cell(row.get("size_bytes"), ".2f", 1e-6),
            _cell(row.get("p50_ms"), ".2f"), _cell(row.get("p90_ms"), ".2f"),
            _cell(row.get("p50_real_ms"), ".2f"), accuracy,
            _cell(row.get("agreement"), ".2%"),
            format_delta(row["vs_teacher"]) if row.get("vs_teacher") else "—",
            _cell(row.get("parity_max_abs_diff"), ".1e"), kernels_cell(row.get("kernels")),
            "★" if on_front else ""]


def _table(rows: list[dict], front: list[int]) -> str:
    head = "".join(f'<th class="{cls}">{escape(name)}</th>' for name, cls in COLUMNS)
    body = []
    for i, row in enumerate(rows):
        cells = _row_cells(row, i in front)
        tds = "".join(f'<td class="{cls}">{escape(c)}</td>' for c, (_, cls) in zip(cells, COLUMNS))
        body.append(f'<tr class="{"front" if i in front else ""}">{tds}</tr>')
    return f'<table id="artifacts"><tr>{head}</tr>{"".join(body)}</table>'


def _findings(findings: list[dict]) -> str:
    parts = []
    for finding in findings:
        parts.append(f"<h3>{escape(finding['title'])}</h3>")
        if finding.get("text"):
            parts.append(f"<p>{escape(finding['text'])}</p>")
        rows = finding.get("rows") or []
        if rows:
            keys = list(rows[0])
            head = "".join(f'<th class="l">{escape(k)}</th>' for k in keys)
            body = "".join("<tr>" + "".join(f'<td class="l">{escape(str(r.get(k)))}</td>'
                                            for k in keys) + "</tr>" for r in rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "\n".join(parts) or "<p>No findings from earlier stages.</p>"


def _host(host: dict | None) -> str:
    rows = "".join(f'<tr><th class="l">{escape(k)}</th><td class="l">{escape(v)}</td></tr>'
                   for k, v in host_items(host))
    return f'<table id="host">{rows}</table>'


def _levers(levers: list[str]) -> str:
    if not levers:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in levers)
    return (f'<h2>How the artifacts were made</h2>\n<ul id="levers">{items}</ul>'
            "<p class=\"note\">Then per target: the scheme in the table; layers the accuracy "
            "fallback kept in float are under the findings.</p>")


def _data(data: dict | None) -> str:
    lines = data_lines(data)
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f'<h2>Data</h2>\n<ul id="data">{items}</ul>'


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f'<h2>Notes</h2>\n<ul id="notes">{items}</ul>'


def render_html(report: dict) -> str:
    """The whole page as one string (inline CSS and SVG, nothing fetched)."""
    rows, front = report["rows"], report.get("pareto", [])
    teacher = report.get("teacher") or {}
    run = report.get("run") or {}
    title = f"edgecompress report — {run.get('model', '')} on {run.get('dataset', '')}"
    teacher_line = ""
    if teacher.get("accuracy") is not None:
        low, high = teacher.get("ci95") or (None, None)
        interval = "" if low is None else f" [{low:.1%}, {high:.1%}]"
        teacher_line = (f"<p>Reference: fp32 PyTorch teacher, accuracy {teacher['accuracy']:.2%}"
                        f"{interval}, n = {teacher.get('n')}.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
{teacher_line}
<h2>Latency vs accuracy, every target and format</h2>
{pareto_svg(rows, front, teacher.get("accuracy"))}
<p class="note">{escape(report["latency_note"])}</p>
<h2>Artifacts</h2>
{_table(rows, front)}
{_levers(report.get("levers") or [])}
<h2>Host</h2>
{_host(report.get("host"))}
{_data(report.get("data"))}
{classes_html(report.get("classes"))}
{_notes(report.get("notes") or [])}
<h2>Findings of earlier stages</h2>
{_findings(report.get("findings", []) + quantization_findings(report.get("quantization") or []))}
</body></html>
"""
