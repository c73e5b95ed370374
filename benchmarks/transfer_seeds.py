"""Distillation arms paired per seed on the same test sentences.

Issue 28's levers: the transfer set against plain distillation (lever 1), prune-and-distil rounds
against one cut (lever 2).

Each argument is `ARM=DIR`, DIR a finished distillation (its `distill.json` and student
checkpoint, written by `edgecompress distill` or a run's distill stage). Every run must have
learnt from the same teacher on the same dataset; the arms differ only in their distill settings,
the runs of one arm only in their seed. The script predicts the test split with each student (the
evaluation path every accuracy here uses: `split_predictions`, as deployed), checks the accuracy
against the run's own distill.json, and pairs each arm with the reference arm seed by seed
(stats.paired_delta: points, Newcombe interval, McNemar p), then the mean over seeds. Per-example
predictions go into the JSON (one character per test sentence), so later arms pair with these runs
without retraining them. Writes JSON (no absolute paths: runs by their folder name) and prints a
markdown table.

    PYTHONPATH=. EDGECOMPRESS_CACHE=CACHE .venv/bin/python benchmarks/transfer_seeds.py \\
        base=RUN/stages/distill/checkpoint base=kd/base-s1 base=kd/base-s2 \\
        aug2=kd/aug2-s0 aug2=kd/aug2-s1 aug2=kd/aug2-s2 --reference base \\
        --note "2 cores shared with other jobs" --out benchmarks/results/transfer_seeds.json

The runs behind `benchmarks/results/transfer_seeds.json` and `prune_rounds.json` are listed in
their "commands" key (a run's distill step is RUN/stages/distill/checkpoint).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from edgecompress.fsutil import atomic_write_json
from edgecompress.rundir import STAGES_DIR, RunDir


def read_run(directory: Path) -> dict:
    """What one finished distillation says about itself (no predictions yet). A run's distill
    step (RUN/stages/distill/checkpoint) counts the steps and minutes of its earlier prune rounds
    too ([prune] rounds: RUN/stages/distill-roundK), each round's steps under "rounds"."""
    directory = Path(directory)
    record = json.loads((directory / "distill.json").read_text())
    in_run = directory.name == "checkpoint" and len(directory.parts) >= 4 \
        and directory.parts[-3] == STAGES_DIR
    earlier = [json.loads((RunDir(directory.parents[2]).stage_dir(step) / directory.name
                           / "distill.json").read_text())
               for step in RunDir(directory.parents[2]).round_steps("distill")] if in_run else []
    records = earlier + [record]
    config, test = record["config"], record["test"]
    return {"run": "/".join(directory.parts[-4:]) if in_run else directory.name,
            "seed": config["train"]["seed"], "teacher": Path(record["teacher"]).name,
            "dataset": record["dataset"], "config": config, "transfer": record.get("transfer"),
            "n_train": record["n_train"], "steps": sum(r["steps"] for r in records),
            **({"rounds": [r["steps"] for r in records]} if earlier else {}),
            "train_minutes": round(sum(r["seconds"] for r in records) / 60, 1),
            "wall_minutes": round(sum(r["wall_seconds"] for r in records) / 60, 1),
            "accuracy": test["student"]["accuracy"],
            "teacher_accuracy": test["teacher"]["accuracy"]}


def predictions(directory: Path, dataset) -> np.ndarray:
    """The student's class ids on the test split."""
    from edgecompress.compress.evaluation.evaluate import split_predictions
    from edgecompress.compress.models.loading import load_model
    from edgecompress.targets import torch_runner

    student = load_model(directory)
    return split_predictions(torch_runner(student.module), student.tokenizer,
                             dataset.split("test"))


def _stored(previous: Path | None, run: dict) -> np.ndarray | None:
    """The predictions `previous` (an earlier output) holds for this very run, else None."""
    if previous is None or not previous.exists():
        return None
    same = ("run", "seed", "config", "accuracy")
    for found in json.loads(previous.read_text())["runs"].values():
        for old in found:
            if all(old[k] == run[k] for k in same):
                return np.array([int(c) for c in old["predictions"]])
    return None


def _dataset(loaded: dict, name: str):
    """The dataset `name`, loaded once."""
    from edgecompress.compress.data.dataref import DataRef

    if name not in loaded:
        loaded[name] = DataRef(name).load()
    return loaded[name]


def _carry_stored(previous: Path, runs: dict[str, list[dict]], datasets: dict,
                  arms: list[str]) -> None:
    """Add the runs of `arms` that `previous` holds and `runs` lacks (by seed), predictions as
    stored."""
    for arm, found in json.loads(previous.read_text())["runs"].items():
        if arm not in arms:
            continue
        seeds = {r["seed"] for r in runs.get(arm, [])}
        for old in found:
            if old["seed"] in seeds:
                continue
            dataset = _dataset(datasets, old["dataset"])
            run = {k: v for k, v in old.items() if k != "predictions"}
            run["_pred"] = np.array([int(c) for c in old["predictions"]])
            run["_truth"] = np.asarray(dataset.split("test").labels)
            runs.setdefault(arm, []).append(run)


def pair(runs: dict[str, list[dict]], reference: str) -> dict:
    """Per arm other than `reference`: the paired delta per seed and their mean."""
    from edgecompress.stats import paired_delta

    truth = runs[reference][0]["_truth"]
    base = {r["seed"]: r for r in runs[reference]}
    out = {}
    for arm, found in runs.items():
        if arm == reference:
            continue
        per_seed = []
        for run in sorted(found, key=lambda r: r["seed"]):
            if run["seed"] not in base:
                raise SystemExit(f"{arm} seed {run['seed']} has no {reference} run to pair with")
            delta = paired_delta(truth, run["_pred"], base[run["seed"]]["_pred"])
            per_seed.append({"seed": run["seed"], **delta.to_json()})
        deltas = [d["delta"] for d in per_seed]
        out[arm] = {"against": reference, "per_seed": per_seed,
                    "mean_delta": round(statistics.mean(deltas), 3),
                    "min_delta": min(deltas), "max_delta": max(deltas),
                    "pays": statistics.mean(deltas) > 0}
    return out


def table(runs: dict[str, list[dict]], paired: dict) -> str:
    lines = ["| arm | seed | steps | train min | test accuracy | paired delta vs reference, "
             "points [95 % CI] | McNemar p |", "|---|---:|---:|---:|---:|---|---:|"]
    for arm, found in runs.items():
        deltas = {d["seed"]: d for d in paired.get(arm, {}).get("per_seed", [])}
        for run in sorted(found, key=lambda r: r["seed"]):
            d = deltas.get(run["seed"])
            text = (f"{d['delta']:+.2f} [{d['delta_ci95'][0]:+.2f}, {d['delta_ci95'][1]:+.2f}]"
                    if d else "reference")
            p = f"{d['p_value']:.2f}" if d else ""
            lines.append(f"| {arm} | {run['seed']} | {run['steps']} | {run['train_minutes']} | "
                         f"{run['accuracy']:.2%} | {text} | {p} |")
        if arm in paired:
            lines.append(f"| {arm} | mean | | | "
                         f"{statistics.mean(r['accuracy'] for r in found):.2%} | "
                         f"{paired[arm]['mean_delta']:+.2f} | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="ARM=DIR, one per finished distillation")
    parser.add_argument("--reference", action="append", default=[],
                        help="the arm the others pair with (default base); given again, the "
                             "arms are paired with that one too (the JSON's paired_also)")
    parser.add_argument("--note", default="", help="how the host was (load) while they ran")
    parser.add_argument("--commands", type=Path, help="a text file with the commands that made "
                                                      "the runs (kept in the JSON)")
    parser.add_argument("--reuse", type=Path, help="an earlier output of this script: a run it "
                                                   "holds (same folder name, seed, config and "
                                                   "accuracy) keeps its stored predictions")
    parser.add_argument("--keep-stored", action="append", default=[], metavar="ARM",
                        help="with --reuse: that arm's runs the file holds and the command line "
                             "does not (earlier seeds whose folders are gone) join with their "
                             "stored predictions")
    parser.add_argument("--out", type=Path, default=Path("transfer_seeds.json"))
    args = parser.parse_args(argv)
    if args.keep_stored and args.reuse is None:
        parser.error("--keep-stored needs --reuse FILE")
    from edgecompress.targets.host import host_info

    runs: dict[str, list[dict]] = {}
    datasets = {}
    for item in args.runs:
        arm, sep, directory = item.partition("=")
        if not sep:
            parser.error(f"expected ARM=DIR, got {item!r}")
        run = read_run(Path(directory))
        dataset = _dataset(datasets, run["dataset"])
        stored = _stored(args.reuse, run)
        run["_pred"] = stored if stored is not None else predictions(Path(directory), dataset)
        run["_truth"] = np.asarray(dataset.split("test").labels)
        measured = float(np.mean(run["_pred"] == run["_truth"]))
        if abs(measured - run["accuracy"]) > 1e-9:
            raise SystemExit(f"{directory}: test accuracy {measured:.4f} here, "
                             f"{run['accuracy']:.4f} in its distill.json")
        runs.setdefault(arm, []).append(run)
    if args.keep_stored:
        _carry_stored(args.reuse, runs, datasets, args.keep_stored)
    references = args.reference or ["base"]
    for reference in references:
        if reference not in runs:
            parser.error(f"no runs of the reference arm {reference!r}")
    facts = {(r["teacher"], r["teacher_accuracy"], r["dataset"]) for v in runs.values() for r in v}
    if len(facts) != 1:
        raise SystemExit(f"runs learnt from different teachers or data: {sorted(facts)}")
    paired = pair(runs, references[0])
    also = {ref: pair(runs, ref) for ref in references[1:]}
    teacher, teacher_accuracy, dataset = facts.pop()
    stored = {arm: [{**{k: v for k, v in r.items() if not k.startswith("_")},
                     "predictions": "".join(map(str, r["_pred"].tolist()))}
                    for r in sorted(found, key=lambda r: r["seed"])]
              for arm, found in runs.items()}
    report = {"teacher": teacher, "teacher_accuracy": teacher_accuracy, "dataset": dataset,
              "split": "test", "n": len(next(iter(runs.values()))[0]["_truth"]),
              "reference": references[0], "paired": paired,
              **({"paired_also": also} if also else {}), "runs": stored,
              "host": host_info(), "host_note": args.note,
              "commands": args.commands.read_text().splitlines() if args.commands else []}
    atomic_write_json(args.out, report)
    print(table(runs, paired))
    for ref, more in also.items():
        print(f"\npaired with {ref}:\n" + table({a: r for a, r in runs.items() if a in more
                                                 or a == ref}, more))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
