"""How `edgecompress search` scales: a 100-trial search of cheap trials (a tiny random BERT on 60
sentences; each trial prunes heads / FFN neurons, exports for x86-cpu through the parity gate,
evaluates on dev and benchmarks with ONNX Runtime) on the local executor and on a local Ray
instance, in the same run, on this host.

Per executor it reports throughput (trials a minute), the scheduler's overhead per trial (what
the wall clock spent beyond the trials' own seconds: process or task start, result transfer,
Optuna's ask / tell on SQLite), the driver's own time per trial (ask, submit, tell: the serial
part that no number of nodes removes), and the projected wall time of the same search on K nodes
like this one:

    wall(K) = max(n * (trial + overhead) / (K * workers_per_node), n * driver)

which assumes trials independent and equally long (the store's cache makes later ones cheaper,
on every executor alike) and a shared filesystem fast enough for the store.

    .venv/bin/python benchmarks/search_scaling.py [--trials 100] [--executors local,ray]

Writes JSON (default benchmarks/results/search_scaling.json) and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console

from edgecompress.cli.search import run_search
from edgecompress.compress.search.study import SearchConfig
from edgecompress.fsutil import atomic_write_json
from edgecompress.targets import host_info

NODES = (1, 2, 4, 8, 16)
SPACE = """
[search.prune]
heads = { low = 0.0, high = 0.75, step = 0.25 }
ffn = { low = 0.0, high = 0.75, step = 0.25 }

[search.quantize.schemes]
x86-cpu = ["fp32", "dynamic-int8", "dynamic-int8-per-channel"]
"""
WORDS = ("a wonderful moving film brilliant sharp script funny warm clever delight dull "
         "lifeless mess plot boring tedious waste long hours acting").split()


def tiny_model(folder: Path) -> Path:
    """A random 2-layer BERT classifier (hidden 64) with the MiniLM tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from edgecompress.compress.models.loading import resolve_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_path("minilm-l6")))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=256, num_labels=2,
                        id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def tiny_data(path: Path, rows: int = 60) -> Path:
    """`rows` seeded sentences, labels by a word rule, split 60 / 20 / 20."""
    rng = random.Random(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        for i in range(rows):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
            label = "pos" if any(w in text for w in ("wonderful", "brilliant", "delight")) \
                else "neg"
            split = "train" if i < rows * 0.6 else ("dev" if i < rows * 0.8 else "test")
            writer.writerow([text, label, split])
    return path


def recipe(folder: Path) -> Path:
    path = folder / "scaling.toml"
    path.write_text(f'name = "scaling"\nmodel = "{tiny_model(folder / "model")}"\n'
                    f'dataset = "{tiny_data(folder / "data.csv")}"\ntargets = ["x86-cpu"]\n\n'
                    f"[bench]\nruns = 20\nwarmup = 2\n{SPACE}")
    return path


def measure(path: Path, executor: str, trials: int, work: Path) -> dict:
    began = time.perf_counter()
    summary = run_search(SearchConfig(recipe=path, out=work / executor, trials=trials,
                                      executor=executor), Console(quiet=True))
    total = time.perf_counter() - began
    timing, rows = summary["timing"], summary["trials"]
    n, workers = len(rows), summary["workers"]
    trial_s = sum(r.get("seconds", 0.0) for r in rows) / n
    wall = timing["wall_seconds"]
    overhead = max(0.0, wall * workers / n - trial_s)
    driver = timing["driver_seconds"] / n
    return {"executor": executor, "trials": n, "workers": workers,
            "complete": sum(r.get("state") == "complete" for r in rows),
            "wall_s": round(wall, 1), "with_summary_s": round(total, 1),
            "trials_per_min": round(n / wall * 60, 2), "mean_trial_s": round(trial_s, 3),
            "overhead_per_trial_s": round(overhead, 3), "driver_per_trial_s": round(driver, 4),
            "projected_wall_s": {str(k): round(max(n * (trial_s + overhead) / (k * workers),
                                                   n * driver), 1) for k in NODES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search_scaling.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="search-scaling-") as tmp:
        work = Path(tmp)
        path = recipe(work)
        rows = [measure(path, name, args.trials, work) for name in args.executors.split(",")]
    host = {k: v for k, v in host_info(threads=1).items() if k != "threads"}
    atomic_write_json(args.out, {"host": host, "space": SPACE.strip(), "rows": rows})
    print(f"host: {host.get('cpu_model')} ({host.get('cores')} cores; ISA "
          f"{' '.join(host.get('isa', []))})")
    header = (f"{'executor':<8} {'trials':>6} {'workers':>7} {'wall s':>7} {'trials/min':>10} "
              f"{'trial s':>8} {'overhead s':>10} {'driver s':>9}  projected wall s on K nodes")
    print(header)
    for row in rows:
        projected = "  ".join(f"K={k}: {v}" for k, v in row["projected_wall_s"].items())
        print(f"{row['executor']:<8} {row['trials']:>6} {row['workers']:>7} {row['wall_s']:>7} "
              f"{row['trials_per_min']:>10} {row['mean_trial_s']:>8} "
              f"{row['overhead_per_trial_s']:>10} {row['driver_per_trial_s']:>9}  {projected}")


if __name__ == "__main__":
    main()
