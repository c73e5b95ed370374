"""The report's per-class section: class names, recall / precision / F1 / support per class, the
confusion matrix and macro-F1 of the teacher and of every artifact, and each artifact's recall
per class minus the teacher's (points) — an artifact that drifts toward one class shows there.

Read from eval.json's `per_class` {labels, recall, precision, f1, support} and `confusion` (rows
true class, columns predicted, in `labels` order), checked by files.check_classes. Models are
matched to the teacher's classes by name. An eval.json without them (older runs) is "not
recorded". In CSV the section is a second file, report-classes.csv: one row per (model, true
class), with that row of the confusion matrix in columns "predicted:<class>".
"""

from __future__ import annotations

import csv
import io
from html import escape

from edgecompress.errors import UserError
from edgecompress.rundir import CLASSES_CSV

__all__ = ["CLASSES_CSV", "class_section", "classes_html", "classes_markdown",
           "render_classes_csv"]
METRICS = ("precision", "recall", "f1", "support")
NOT_RECORDED = "not recorded (its eval.json has no per_class / confusion: evaluated before " \
               "edgecompress recorded them; rerun eval to get them)"


def _entry(name: str, record: dict, labels: list[str]) -> dict:
    """One model's per-class numbers in `labels` order (matched by name)."""
    per_class = record.get("per_class")
    entry = {"model": name, "format": record.get("format"), "scheme": record.get("scheme"),
             "macro_f1": record.get("macro_f1"), "recorded": per_class is not None}
    if per_class is None:
        return entry
    own = per_class["labels"]
    if sorted(own) != sorted(labels):
        raise UserError(f"{name}: eval.json per_class.labels {own} are not the teacher's "
                        f"classes {labels}")
    order = [own.index(label) for label in labels]
    entry.update({key: [per_class[key][i] for i in order] for key in METRICS})
    confusion = record.get("confusion")
    entry["confusion"] = None if confusion is None else [[confusion[i][j] for j in order]
                                                         for i in order]
    return entry


def class_section(teacher: dict, evaluated: list[tuple[str, dict]]) -> dict:
    """{"labels": [...], "models": [entry per model: the teacher first, then each (target,
    eval.json with the manifest's format and scheme) of `evaluated`]}; each entry has macro_f1,
    recorded, and when recorded precision / recall / f1 / support / confusion and
    recall_delta_points (vs the teacher; None for the teacher or when it has none)."""
    records = ([("teacher", {"format": "torch", "scheme": "fp32", **teacher})] if teacher
               else []) + [(name, record) for name, record in evaluated if record]
    first = next((r["per_class"]["labels"] for _, r in records if r.get("per_class")), None)
    labels = list(first or [])
    models = [_entry(name, record, labels) for name, record in records]
    reference = models[0] if teacher and models[0]["recorded"] else None
    for entry in models:
        entry["recall_delta_points"] = None
        if entry["recorded"] and reference is not None and entry is not reference:
            entry["recall_delta_points"] = [round((a - b) * 100, 2) for a, b in
                                            zip(entry["recall"], reference["recall"])]
    return {"labels": labels, "models": models}


def _largest_drop(section: dict) -> str | None:
    """'edgetpu, class neutral: recall 77.0% → 62.0% (-15.0 points)' or None."""
    worst = None
    for entry in section["models"]:
        for i, delta in enumerate(entry.get("recall_delta_points") or []):
            if delta < 0 and (worst is None or delta < worst[0]):
                worst = (delta, entry, i)
    if worst is None:
        return None
    delta, entry, i = worst
    teacher = section["models"][0]["recall"][i]
    return (f"{entry['model']}, class {section['labels'][i]}: recall {teacher:.1%} → "
            f"{entry['recall'][i]:.1%} ({delta:+.1f} points)")


def _recall_cell(entry: dict, i: int) -> str:
    if not entry["recorded"]:
        return "not recorded"
    delta = entry.get("recall_delta_points")
    return f"{entry['recall'][i]:.1%}" + ("" if delta is None else f" ({delta[i]:+.1f})")


def _f1(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def summary_table(section: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows): recall per class for every model with its delta vs the teacher, then a
    macro-F1 row."""
    models, labels = section["models"], section["labels"]
    support = next((m["support"] for m in models if m["recorded"]), [None] * len(labels))
    header = ["class", "support"] + [m["model"] for m in models]
    body = [[label, "—" if support[i] is None else f"{support[i]:,.0f}"]
            + [_recall_cell(m, i) for m in models] for i, label in enumerate(labels)]
    body.append(["macro-F1", ""] + [_f1(m.get("macro_f1")) for m in models])
    return header, body


def model_table(entry: dict, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["class", "precision", "recall", "F1", "support", "Δ recall vs teacher (points)"]
    delta = entry.get("recall_delta_points")
    return header, [[label, f"{entry['precision'][i]:.1%}", f"{entry['recall'][i]:.1%}",
                     f"{entry['f1'][i]:.3f}", f"{entry['support'][i]:,.0f}",
                     "—" if delta is None else f"{delta[i]:+.1f}"]
                    for i, label in enumerate(labels)]


def confusion_table(entry: dict, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    return (["true \\ predicted", *labels],
            [[label, *(f"{n:,.0f}" for n in entry["confusion"][i])]
             for i, label in enumerate(labels)])


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
            + ["| " + " | ".join(row) + " |" for row in rows] + [""])


INTRO = ("Recall per class, with the change vs the fp32 teacher in points (negative: the model "
         "finds fewer rows of that class than the teacher did), and macro-F1.")


def classes_markdown(section: dict | None) -> list[str]:
    """The per-class section as markdown lines."""
    if not section:
        return []
    lines = ["## Per class", ""]
    if not section["labels"]:
        return lines + [f"Per-class metrics: {NOT_RECORDED}.", ""]
    lines += [INTRO, ""]
    drop = _largest_drop(section)
    if drop:
        lines += [f"Largest per-class recall drop vs the teacher: {drop}.", ""]
    lines += _md_table(*summary_table(section))
    for entry in section["models"]:
        title = _title(entry)
        if not entry["recorded"]:
            lines += [f"### {title}", "", f"Per-class metrics: {NOT_RECORDED}.", ""]
            continue
        lines += [f"### {title}", ""] + _md_table(*model_table(entry, section["labels"]))
        if entry.get("confusion") is not None:
            lines += ["Confusion matrix (rows: true class, columns: predicted class):", ""]
            lines += _md_table(*confusion_table(entry, section["labels"]))
    return lines


def _title(entry: dict) -> str:
    how = ", ".join(str(x) for x in (entry.get("format"), entry.get("scheme")) if x)
    return entry["model"] + (f" ({how})" if how else "")


def _html_table(header: list[str], rows: list[list[str]], table_id: str = "") -> str:
    ident = f' id="{escape(table_id)}"' if table_id else ""
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{escape(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i == 0 else ""}">{escape(c)}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table{ident}><tr>{head}</tr>{body}</table>"


def classes_html(section: dict | None) -> str:
    """The per-class section as HTML (tables only, no script)."""
    if not section:
        return ""
    parts = ["<h2>Per class</h2>"]
    if not section["labels"]:
        return "\n".join(parts + [f'<p class="note">Per-class metrics: {escape(NOT_RECORDED)}.'
                                  "</p>"])
    parts.append(f'<p class="note">{escape(INTRO)}</p>')
    drop = _largest_drop(section)
    if drop:
        parts.append(f"<p><b>Largest per-class recall drop vs the teacher:</b> {escape(drop)}."
                     "</p>")
    parts.append(_html_table(*summary_table(section), table_id="classes"))
    for entry in section["models"]:
        parts.append(f"<h3>{escape(_title(entry))}</h3>")
        if not entry["recorded"]:
            parts.append(f'<p class="note">Per-class metrics: {escape(NOT_RECORDED)}.</p>')
            continue
        parts.append(_html_table(*model_table(entry, section["labels"])))
        if entry.get("confusion") is not None:
            parts.append('<p class="note">Confusion matrix (rows: true class, columns: '
                         "predicted class):</p>")
            parts.append(_html_table(*confusion_table(entry, section["labels"])))
    return "\n".join(parts)


def render_classes_csv(report: dict) -> str:
    """report-classes.csv: one line per (model, true class); a model whose eval.json has no
    per-class metrics gets one line with recorded = False and empty class columns."""
    section = report.get("classes") or {"labels": [], "models": []}
    labels = section["labels"]
    fields = ["model", "format", "scheme", "recorded", "macro_f1", "class", *METRICS,
              "recall_vs_teacher_points", *(f"predicted:{label}" for label in labels)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for entry in section["models"]:
        common = {key: entry.get(key) for key in ("model", "format", "scheme", "recorded",
                                                  "macro_f1")}
        if not entry["recorded"]:
            writer.writerow(common)
            continue
        delta = entry.get("recall_delta_points")
        for i, label in enumerate(labels):
            confusion = entry.get("confusion")
            writer.writerow({**common, "class": label,
                             **{key: entry[key][i] for key in METRICS},
                             "recall_vs_teacher_points": None if delta is None else delta[i],
                             **({} if confusion is None else
                                {f"predicted:{name}": n for name, n in zip(labels, confusion[i])})})
    return buffer.getvalue()
