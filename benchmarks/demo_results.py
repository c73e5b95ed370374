"""The README's demo table, from finished demo runs (one per seed): rows, paired deltas, spread.

Reads each run's `report.json` (written by `edgecompress demo` / `run`), keeps per target the size,
p50 (at 128 tokens, and over real sentence lengths when the run measured it), accuracy with its
Wilson interval and the paired delta vs the teacher on the same sentences,
and, given several runs (e.g. `seeds` or reruns on other machines), the mean and the spread
(min..max) of each target's accuracy and delta across them. The host of every run is recorded:
latencies of runs from different hosts are not compared.

    .venv/bin/python benchmarks/demo_results.py RUN_DIR [RUN_DIR ...] \
        [--out benchmarks/results/demo.json]

Writes JSON and prints the markdown table the README carries.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from edgecompress.reports.host import describe_host
from edgecompress.stats import format_delta


def run_summary(run_dir: Path) -> dict:
    """One run's teacher, host and per-target rows, read from its report.json."""
    report = json.loads((run_dir / "report.json").read_text())
    teacher = report.get("teacher") or {}
    rows = {}
    for row in report["rows"]:
        if row.get("measured_on") != "host":
            continue
        rows[row["target"]] = {key: row.get(key) for key in (
            "format", "scheme", "threads", "size_bytes", "gzip_bytes", "p50_ms", "p50_real_ms",
            "accuracy", "ci95", "n", "agreement", "vs_teacher")}
    return {"run_dir": run_dir.name,  # the folder's name, never a path of this machine
            "host": report.get("host"),
            "teacher": {k: teacher.get(k) for k in ("accuracy", "ci95", "n")},
            "findings": [f["title"] for f in report.get("findings") or []], "rows": rows,
            "refused": report.get("refused") or []}


def spread(runs: list[dict]) -> dict:
    """Per target: mean and min..max of accuracy and of the paired delta (points) across runs."""
    out = {}
    for target in runs[0]["rows"]:
        present = [r["rows"][target] for r in runs if target in r["rows"]]
        accuracy = [row["accuracy"] * 100 for row in present]
        deltas = [row["vs_teacher"]["delta"] for row in present if row.get("vs_teacher")]
        out[target] = {"runs": len(present),
                       "accuracy_mean": statistics.fmean(accuracy),
                       "accuracy_range": [min(accuracy), max(accuracy)],
                       "delta_mean": statistics.fmean(deltas) if deltas else None,
                       "delta_range": [min(deltas), max(deltas)] if deltas else None}
    return out


def table(runs: list[dict], spreads: dict) -> list[str]:
    """The README's markdown table from the first run, with the spread column when > 1 run."""
    first = runs[0]
    many = len(runs) > 1
    lines = ["| target | format | scheme | size MB | p50 ms (target threads) "
             "| p50 ms, real lengths | accuracy [95 % CI] "
             "| Δ vs teacher, points [paired 95 % CI] |" + (" spread over runs |" if many else ""),
             "|---|---|---|---:|---:|---:|---|---|" + ("---|" if many else "")]
    for target, row in first["rows"].items():
        low, high = row["ci95"]
        cells = [target, row["format"], row["scheme"], f"{row['size_bytes'] / 1e6:.2f}",
                 f"{row['p50_ms']:.2f}",
                 "—" if row.get("p50_real_ms") is None else f"{row['p50_real_ms']:.2f}",
                 f"{row['accuracy']:.2%} [{low * 100:.1f}, {high * 100:.1f}]",
                 format_delta(row["vs_teacher"]) if row.get("vs_teacher") else "—"]
        if many:
            lo, hi = spreads[target]["accuracy_range"]
            cell = f"{lo:.2f}..{hi:.2f} %"
            if spreads[target]["delta_range"]:
                dlo, dhi = spreads[target]["delta_range"]
                cell += f", Δ {dlo:+.1f}..{dhi:+.1f}"
            cells.append(f"{cell} ({spreads[target]['runs']} of {len(runs)} runs)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished demo run directories")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/demo.json"))
    args = parser.parse_args(argv)
    runs = [run_summary(path) for path in args.runs]
    spreads = spread(runs)
    teachers = [100 * r["teacher"]["accuracy"] for r in runs]
    result = {"runs": runs, "spread": spreads, "teacher_range": [min(teachers), max(teachers)],
              "hosts": sorted({describe_host(r["host"]) for r in runs})}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp = args.out.with_suffix(".json.tmp")
    temp.write_text(json.dumps(result, indent=2) + "\n")
    temp.replace(args.out)
    print(f"teacher {teachers[0]:.2f} % on n={runs[0]['teacher']['n']} (runs: "
          f"{min(teachers):.2f}..{max(teachers):.2f} %); host: {result['hosts'][0]}")
    print("\n".join(table(runs, spreads)))
    for run in runs:
        for refused in run["refused"]:
            print(f"{run['run_dir']}: {refused['target']} refused by the parity gate "
                  f"({refused['reason'].rsplit(': ', 1)[-1]})")


if __name__ == "__main__":
    main()
