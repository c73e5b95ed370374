"""Distillation settings compared over seeds: the test accuracy of finished distillations.

Each argument is `VARIANT=DIR`, DIR a distillation output (its `distill.json`, written by
`edgecompress distill` or by a run's distill stage). Runs of one variant differ only in their seed;
every run must have learnt from the same teacher on the same test split, or the script refuses.
Per variant: each seed's test accuracy and its gap to the teacher (points), then the mean and the
range over seeds. Writes JSON and prints the markdown table the README carries.

    .venv/bin/python benchmarks/distill_seeds.py logits=RUN/stages/distill/checkpoint \
        logits=kd/base-s1 hidden=kd/hidden-s1 ... --out benchmarks/results/distill_seeds.json

The runs behind `benchmarks/results/distill_seeds.json` (teacher and student from one demo run):
`edgecompress distill --teacher T --student RUN/stages/prune/checkpoint --dataset rt-polarity
--out kd/VARIANT-sN --seed N [--hidden-weight 1.0]`, seeds 1 and 2; seed 0 of "logits" is the
demo run's own distill stage, seed 0 of "hidden" the same command with `--layer-map 0:1,1:3,2:5`
(the default map for teacher layers 1, 3, 5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from edgecompress.fsutil import atomic_write_json


def read_run(directory: Path) -> dict:
    """Seed, teacher, weights and test accuracies of one finished distillation."""
    record = json.loads((Path(directory) / "distill.json").read_text())
    test, config = record["test"], record["config"]
    return {"dir": str(directory), "seed": config["train"]["seed"], "teacher": record["teacher"],
            "weights": {k: v for k, v in config.items() if k.endswith("_weight") and v},
            "student": test["student"]["accuracy"], "teacher_accuracy": test["teacher"]["accuracy"],
            "n": test["student"]["n"], "agreement": test["student"]["agreement"],
            "gap_points": round(100 * (test["student"]["accuracy"]
                                       - test["teacher"]["accuracy"]), 2),
            "wall_seconds": record.get("wall_seconds")}


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per variant: its runs sorted by seed, and the mean / min / max gap over them."""
    teachers = {(r["teacher"], r["teacher_accuracy"], r["n"]) for v in runs.values() for r in v}
    if len(teachers) != 1:
        raise SystemExit(f"runs learnt from different teachers or test sets: {sorted(teachers)}")
    out = {}
    for variant, found in runs.items():
        gaps = [r["gap_points"] for r in found]
        out[variant] = {"runs": sorted(found, key=lambda r: r["seed"]),
                        "mean_gap_points": round(statistics.mean(gaps), 2),
                        "min_gap_points": min(gaps), "max_gap_points": max(gaps)}
    return out


def table(summary: dict) -> str:
    lines = ["| variant | seeds | test accuracy per seed | gap to teacher, points | mean gap |",
             "|---|---|---|---|---:|"]
    for variant, row in summary.items():
        runs = row["runs"]
        seeds = ", ".join(str(r["seed"]) for r in runs)
        accuracies = " / ".join(f"{r['student']:.2%}" for r in runs)
        gaps = " / ".join(f"{r['gap_points']:+.2f}" for r in runs)
        lines.append(f"| {variant} | {seeds} | {accuracies} | {gaps} | "
                     f"{row['mean_gap_points']:+.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="VARIANT=DIR, one per finished distillation")
    parser.add_argument("--out", type=Path, default=Path("distill_seeds.json"))
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {}
    for item in args.runs:
        variant, sep, directory = item.partition("=")
        if not sep:
            parser.error(f"expected VARIANT=DIR, got {item!r}")
        runs.setdefault(variant, []).append(read_run(Path(directory)))
    summary = summarize(runs)
    teacher = next(iter(summary.values()))["runs"][0]
    atomic_write_json(args.out, {"teacher": teacher["teacher"],
                                 "teacher_accuracy": teacher["teacher_accuracy"],
                                 "n": teacher["n"], "variants": summary})
    print(table(summary))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
