"""Re-time a search's chosen artifact and the recipe-as-written (baseline) artifact side by side.

A search benchmarks each trial when it runs, so two trials' latencies may come from different
moments of a shared machine. This times the two artifacts per target again, interleaved (A, B, A,
B, ...) with `edgecompress bench` (the target's runtime and threads, a fresh process each time),
and reports the median of each, with the test numbers the search recorded.

    .venv/bin/python benchmarks/search_rebench.py SEARCH_DIR [--rounds 5] [--out FILE]

Writes JSON (default SEARCH_DIR/rebench.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from edgecompress.fsutil import atomic_write_json
from edgecompress.targets import host_info

EDGECOMPRESS = Path(sys.executable).parent / "edgecompress"


def _p50(artifact: str, target: str) -> float:
    done = subprocess.run([str(EDGECOMPRESS), "bench", artifact, "--target", target, "--json"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["p50_ms"]


def rebench(summary: dict, rounds: int) -> dict:
    """{target: {"baseline" | "chosen": {trial, p50 per round, median, test row}}}."""
    out = {}
    for target, part in summary["targets"].items():
        picks = {"baseline": summary.get("baseline"), "chosen": part["chosen"]}
        if None in picks.values():
            continue
        points = {p["trial"]: p for p in part["points"]}
        times = {label: [] for label in picks}
        for _ in range(rounds):
            for label, trial in picks.items():
                times[label].append(_p50(points[trial]["artifact"], target))
        out[target] = {label: {"trial": trial, "p50_ms_rounds": times[label],
                               "p50_ms_median": statistics.median(times[label]),
                               "test": part["test"].get(str(trial))}
                       for label, trial in picks.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("search", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    summary = json.loads((args.search / "search.json").read_text())
    rows = rebench(summary, args.rounds)
    host = {k: v for k, v in host_info(threads=1).items() if k != "threads"}
    atomic_write_json(args.out or args.search / "rebench.json", {"host": host, "targets": rows})
    print(f"host: {host.get('cpu_model')} ({host.get('cores')} cores; ISA "
          f"{' '.join(host.get('isa', []))}); {args.rounds} interleaved rounds")
    print(f"{'target':<12} {'which':<9} {'trial':>5} {'test acc':>9} "
          f"{'MB':>7} {'p50 ms':>8}  rounds")
    for target, pair in rows.items():
        for label, row in pair.items():
            test = row["test"] or {}
            print(f"{target:<12} {label:<9} {row['trial']:>5} {test.get('accuracy', 0):>9.2%} "
                  f"{test.get('size_bytes', 0) / 1e6:>7.2f} {row['p50_ms_median']:>8.2f}  "
                  + " ".join(f"{t:.2f}" for t in row["p50_ms_rounds"]))


if __name__ == "__main__":
    main()
