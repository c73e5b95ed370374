"""The report of an LLM run (run.json's kind "edgecompress-llm-run"): one row per artifact
(artifacts/<target>/manifest.json + eval.json + bench.json) and, when the recipe names an
anchors file (benchmarks/results/slm_anchors.json), its rows marked as anchors, with the host
they were measured on; the front is quality x speed x size: mean KL to the reference (lower),
decode tokens/s at 1 thread (higher), MB (lower). Anchors measured on another host, or on other
eval windows, are said to be so in the notes: their numbers are never passed off as this run's.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.reports.host import describe_host, same_host
from edgecompress.rundir import (
    BENCH_FILE,
    EVAL_FILE,
    LLM_RUN_KIND,
    MANIFEST_FILE,
    RunDir,
    read_object,
)

HEADLINE_THREADS = 1  # the front's speed: decode tokens/s at 1 thread (the anchors' headline)
CSV_KEYS = ("name", "source", "tool", "format", "scheme", "size_mb", "kl", "kl_ci_low",
            "kl_ci_high", "top1_agreement", "perplexity", "decode_tok_s",
            "decode_tok_s_target_threads", "target_threads", "ttft_ms", "peak_rss_mb",
            "on_front", "host")


def is_llm_run(run_dir: Path) -> bool:
    """True when run.json says the folder holds an LLM run."""
    run = RunDir(run_dir)
    return run.run_file.is_file() and run.read_run().get("kind") == LLM_RUN_KIND


def _artifact_row(run: RunDir, target: str, notes: list[str]) -> dict:
    folder = run.artifact_dir(target)
    manifest = read_object(folder / MANIFEST_FILE)
    if manifest.get("kind") != "llm" or not isinstance(manifest.get("size_mb"), (int, float)):
        raise UserError(f"{folder / MANIFEST_FILE} is not an LLM artifact manifest (no kind "
                        "'llm' or no size_mb)")
    evaluation, bench = read_object(folder / EVAL_FILE), read_object(folder / BENCH_FILE)
    missing = [name for name, data in ((EVAL_FILE, evaluation), (BENCH_FILE, bench)) if not data]
    if missing:
        notes.append(f"{target}: no {' and no '.join(missing)} yet; its cells show —")
    speed = {int(r["threads"]): r for r in bench.get("rows", ()) if isinstance(r, dict)}
    one, own = speed.get(HEADLINE_THREADS, {}), speed.get(int(manifest.get("threads") or 1), {})
    return {"name": target, "source": "this run", "anchor": False, "tool": "edgecompress",
            "format": manifest.get("format"), "scheme": manifest.get("scheme"),
            "size_mb": manifest["size_mb"], "kl": evaluation.get("kl"),
            "kl_ci": evaluation.get("kl_ci"), "top1_agreement": evaluation.get("top1_agreement"),
            "perplexity": evaluation.get("perplexity"), "decode_tok_s": one.get("decode_tok_s"),
            "target_threads": manifest.get("threads"),
            "decode_tok_s_target_threads": own.get("decode_tok_s"),
            "ttft_ms": one.get("ttft_ms") or {}, "peak_rss_mb": one.get("peak_rss_mb"),
            "host": bench.get("host"), "load_average": bench.get("load_average"),
            "gate": manifest.get("gate"),
            "continuations": evaluation.get("continuations") or []}


def _anchor_rows(path: str) -> tuple[list[dict], dict]:
    """The anchors file's rows as report rows, and the file's record (host, eval, command).
    Its edgecompress rows (artifacts measured beside the anchors) are left out: a run's own
    artifacts are its rows."""
    data = read_object(Path(path), missing_ok=False)
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise UserError(f"{path} has no 'rows' list: not an anchors file")
    prompt = str((data.get("speed_setup") or {}).get("prompt_tokens", 128))
    out = []
    for row in rows:
        if row.get("edgecompress"):
            continue
        out.append({"name": f"{row.get('tool')} {row.get('scheme')}", "source": "anchor",
                    "anchor": True, "tool": row.get("tool"), "format": row.get("format"),
                    "scheme": row.get("scheme"), "size_mb": row.get("size_mb"),
                    "kl": row.get("kl"), "kl_ci": row.get("kl_ci"),
                    "top1_agreement": row.get("top1_agreement"),
                    "perplexity": row.get("perplexity"), "decode_tok_s": row.get("decode_tok_s"),
                    "target_threads": None, "decode_tok_s_target_threads": None,
                    "ttft_ms": {prompt: row["ttft_ms"]} if row.get("ttft_ms") else {},
                    "peak_rss_mb": None, "host": data.get("host"),
                    "made_by": row.get("made_by")})
    return out, data


def _point(row: dict) -> tuple[float, float, float] | None:
    values = (row.get("kl"), row.get("decode_tok_s"), row.get("size_mb"))
    if any(v is None for v in values):
        return None
    return float(values[0]), -float(values[1]), float(values[2])  # all three: lower is better


def llm_front(rows: list[dict]) -> list[int]:
    """Indices of rows no other row dominates on (KL lower, decode tok/s higher, MB lower);
    rows missing one of the three are never on it."""
    points = [_point(row) for row in rows]
    front = []
    for i, p in enumerate(points):
        if p is None:
            continue
        if not any(q is not None and j != i and all(a <= b for a, b in zip(q, p)) and q != p
                   for j, q in enumerate(points)):
            front.append(i)
    return front


def _anchor_notes(anchors: dict, rows: list[dict], run: dict) -> list[str]:
    """What a reader must know before comparing the anchors with this run's rows: their host
    (same CPU kind or not) and their eval windows."""
    notes = []
    host = anchors.get("host")
    own = next((r["host"] for r in rows if not r["anchor"] and r.get("host")), None)
    where = describe_host(host)
    if own is None:
        notes.append(f"anchors measured on {where}; this run has no benchmark yet to compare "
                     "hosts")
    elif same_host(host, own):
        ours = next((r.get("load_average") for r in rows if r.get("load_average")), None)
        notes.append(f"anchors measured on the same CPU kind as this run ({where}), at another "
                     f"time: their speed compares only as far as the load did (1-minute load "
                     f"average, anchors: {_load(anchors.get('load_average'))}; this run's "
                     f"bench: {_load(ours)})")
    else:
        notes.append(f"anchors measured on a different host ({where}) than this run "
                     f"({describe_host(own)}): their decode tok/s and TTFT do not compare with "
                     "this run's")
    theirs, ours = anchors.get("eval") or {}, run.get("eval") or {}
    same = all(theirs.get(k) == ours.get(k) for k in ("context", "stride"))
    if same and theirs.get("windows") != ours.get("windows"):
        notes.append(f"anchors scored on {theirs.get('windows')} windows of "
                     f"{theirs.get('context')} tokens of {anchors.get('dataset')} "
                     f"{anchors.get('split')}; this run on the first {ours.get('windows')} of "
                     "the same windows: compare KL within the intervals")
    elif not same:
        notes.append(f"anchors scored with eval {theirs}; this run with {ours}: different "
                     "windows, KL compares only roughly")
    return notes


def _load(load) -> str:
    """'13.3 at the start, 3.6 at the end' from {"start": [1, 5, 15 min], "end": [...]}."""
    if not isinstance(load, dict) or not load.get("start"):
        return "not recorded"
    ends = [(when, load.get(when)) for when in ("start", "end") if load.get(when)]
    return ", ".join(f"{values[0]:.1f} at the {when}" for when, values in ends)


def _levers(run: RunDir) -> list[str]:
    lines = []
    for step in ("prune", "distill"):
        record = read_object(run.stage_file(step))
        metrics = record.get("metrics") or {}
        if step == "prune" and metrics:
            lines.append(f"prune: layers kept {metrics.get('layers_kept')}, parameters "
                         f"{metrics.get('params_before'):,} -> {metrics.get('params_after'):,}")
        elif metrics:
            lines.append(f"distill: {metrics.get('steps_done')}/{metrics.get('steps')} steps, "
                         f"{metrics.get('tokens_seen'):,} tokens, loss "
                         f"{metrics.get('first_loss'):.4f} -> {metrics.get('final_loss'):.4f}")
    return lines


def build_llm_report(run_dir: Path) -> dict:
    """The LLM run's report as a dict; UserError naming a file that is not what a step
    writes, or a folder with nothing to report."""
    run = RunDir(run_dir)
    record, notes = run.read_run(), []
    rows = [_artifact_row(run, target, notes) for target in run.artifact_targets()]
    refused = []
    for target in run.refused_targets():
        reason = str(run.read_refused(target).get("reason") or "no reason recorded")
        refused.append({"target": target, "reason": reason})
        notes.append(f"{target}: refused by its gate, no artifact kept ({reason})")
    if not rows and not refused:
        raise UserError(f"{run_dir}: nothing to report: no artifacts/*/manifest.json and no "
                        "refused target; no target exported yet")
    anchors = None
    if record.get("anchors"):
        anchor_rows, anchors = _anchor_rows(record["anchors"])
        notes += _anchor_notes(anchors, rows, record)
        rows += anchor_rows
    reference = next((r for r in (read_object(run.eval_file(t)) for t in run.artifact_targets())
                      if r.get("reference_perplexity") is not None), None)
    return {"kind": LLM_RUN_KIND, "run": record, "rows": rows, "front": llm_front(rows),
            "refused": refused, "levers": _levers(run), "notes": notes,
            "reference": None if reference is None else {
                "model": reference.get("reference"),
                "perplexity": reference["reference_perplexity"],
                "perplexity_ci": reference.get("reference_perplexity_ci")},
            "anchors": None if anchors is None else {
                "file": record["anchors"], "command": anchors.get("command"),
                "host": describe_host(anchors.get("host")), "eval": anchors.get("eval")}}


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _lengths(report: dict) -> list[str]:
    """The prompt lengths the run timed TTFT for (its [bench] prompt_lengths), as strings."""
    return [str(n) for n in ((report.get("run") or {}).get("bench") or {})
            .get("prompt_lengths", ())]


def _cells(row: dict, on_front: bool, lengths: list[str]) -> list[str]:
    low, high = row.get("kl_ci") or (None, None)
    kl = _fmt(row.get("kl"), ".4f") + ("" if low is None else f" [{low:.4f}, {high:.4f}]")
    own, threads = row.get("decode_tok_s_target_threads"), row.get("target_threads")
    return [row["name"] + (" (anchor)" if row["anchor"] else ""), str(row["format"]),
            str(row["scheme"]), _fmt(row.get("size_mb"), ".1f"), kl,
            _fmt(row.get("top1_agreement"), ".3f"), _fmt(row.get("perplexity"), ".2f"),
            _fmt(row.get("decode_tok_s"), ".1f"),
            "—" if own is None else f"{own:.1f} ({threads} thread{'s' if threads != 1 else ''})",
            *(_fmt((row.get("ttft_ms") or {}).get(n), ".0f") for n in lengths),
            _fmt(row.get("peak_rss_mb"), ".0f"), "★" if on_front else ""]


def _headers(lengths: list[str]) -> list[str]:
    return ["row", "format", "scheme", "MB", "KL to reference [95 % CI]", "top-1", "perplexity",
            "decode tok/s, 1 thread", "decode tok/s, target threads",
            *(f"TTFT {n}-token prompt, ms" for n in lengths), "peak RSS MB", "front"]


def _intro(report: dict) -> list[str]:
    run, lines = report.get("run") or {}, []
    lines.append(f"Model `{run.get('model')}`, held-out text `{run.get('dataset')}` "
                 f"{run.get('eval_split')} ({(run.get('eval') or {}).get('windows')} windows of "
                 f"{(run.get('eval') or {}).get('context')} tokens).")
    ref = report.get("reference")
    if ref:
        low, high = ref.get("perplexity_ci") or (None, None)
        lines.append(f"Reference: `{ref['model']}` in fp32 torch (KL 0, top-1 1), perplexity "
                     f"{ref['perplexity']:.2f}" + ("" if low is None else
                                                   f" [{low:.2f}, {high:.2f}]") + ".")
    return lines


def render_llm_markdown(report: dict) -> str:
    lines = ["# edgecompress report: language model", ""] + _intro(report) + [""]
    lengths = _lengths(report)
    headers = _headers(lengths)
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    front = set(report["front"])
    lines += ["| " + " | ".join(_cells(row, i in front, lengths)) + " |"
              for i, row in enumerate(report["rows"])]
    lines += ["", "> ★ = on the front: no other row has lower KL, higher decode tok/s at 1 "
              "thread and fewer MB all at once. Rows marked (anchor) come from "
              f"{(report.get('anchors') or {}).get('file')} (`"
              f"{(report.get('anchors') or {}).get('command')}`), measured on "
              f"{(report.get('anchors') or {}).get('host')}; this run's rows on "
              f"{describe_host(_own_host(report))}.", ""]
    if report.get("levers"):
        lines += ["## How the artifacts were made", ""] + [f"- {x}" for x in report["levers"]]
        lines += ["- then per target: converted, quantized and gated against its own torch "
                  "checkpoint (llm_export.json)", ""]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in report["notes"]] + [""]
    greedy = [(r["name"], c) for r in report["rows"] for c in r.get("continuations") or ()]
    if greedy:
        lines += ["## Greedy continuations", ""]
        lines += [f"- **{name}**: {c['prompt']}|{_line(c['text'])} (reference: "
                  f"|{_line(c['reference_text'])}; same first {c['same_prefix']} of "
                  f"{c['new_tokens']} tokens)" for name, c in greedy]
    return "\n".join(lines) + "\n"


def _line(text: str) -> str:
    """Generated text on one line (a new line shown as ⏎), so a list item stays one item."""
    return text.replace("\n", "⏎")


def _own_host(report: dict):
    return next((r["host"] for r in report["rows"] if not r["anchor"] and r.get("host")), None)


def render_llm_csv(report: dict) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_KEYS, extrasaction="ignore")
    writer.writeheader()
    front = set(report["front"])
    for i, row in enumerate(report["rows"]):
        low, high = row.get("kl_ci") or (None, None)
        ttft = ";".join(f"{n}={ms:.1f}" for n, ms in (row.get("ttft_ms") or {}).items())
        writer.writerow({**row, "kl_ci_low": low, "kl_ci_high": high, "on_front": i in front,
                         "ttft_ms": ttft, "host": describe_host(row.get("host"))})
    return buffer.getvalue()


def render_llm_html(report: dict) -> str:
    """A self-contained page: the same table, notes and continuations as the Markdown."""
    esc = html.escape
    front, lengths = set(report["front"]), _lengths(report)
    head = "".join(f"<th>{esc(h)}</th>" for h in _headers(lengths))
    body = "".join("<tr" + (' class="anchor"' if row["anchor"] else "") + ">"
                   + "".join(f"<td>{esc(c)}</td>" for c in _cells(row, i in front, lengths))
                   + "</tr>"
                   for i, row in enumerate(report["rows"]))
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.get("notes") or [])
    levers = "".join(f"<li>{esc(n)}</li>" for n in report.get("levers") or [])
    intro = "".join(f"<p>{esc(line.replace('`', ''))}</p>" for line in _intro(report))
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>edgecompress LLM report"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
            "border-bottom:1px solid #ddd;text-align:right}tr.anchor{color:#666;"
            "font-style:italic}</style></head><body><h1>edgecompress report: language model"
            f"</h1>{intro}<table><tr>{head}</tr>{body}</table>"
            "<p>★ = on the front (KL lower, decode tok/s at 1 thread higher, MB lower). Italic "
            f"rows are anchors, measured on {esc(str((report.get('anchors') or {}).get('host')))}"
            f"; this run's rows on {esc(describe_host(_own_host(report)))}.</p>"
            + (f"<h2>How the artifacts were made</h2><ul>{levers}</ul>" if levers else "")
            + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "") + "</body></html>\n")
