"""fp32 torch eager vs fp32 ONNX Runtime vs fp32 LiteRT for the same model, side by side.

One run, same host, same shape (batch 1 x seq 128) and thread count for all three; the ratios
against torch eager are the result to read (absolute numbers move with the machine's load).

    .venv/bin/python benchmarks/export_baseline.py [--model DIR] [--threads 1] [--runs 200]

Writes JSON (default benchmarks/results/export_baseline.json) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgecompress.compress.evaluation.artifacts import parity_sample
from edgecompress.compress.models.loading import load_model
from edgecompress.fsutil import atomic_write_json, cache_root
from edgecompress.targets import bench, export, load_profile

TEACHER = cache_root() / "teachers" / "minilm-l6-rt-polarity"


def torch_latency(module, vocab: int, seq: int, threads: int, warmup: int, runs: int) -> dict:
    """Eager torch latency in this process: (1, seq) random ids, full mask, no_grad."""
    torch.set_num_threads(threads)
    ids = torch.from_numpy(np.random.default_rng(0).integers(1, vocab, (1, seq)))
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter_ns()
            module(ids, mask)
            if i >= warmup:
                times.append((time.perf_counter_ns() - start) / 1e6)
    times.sort()
    return {"runtime": "torch-eager", "p50_ms": statistics.median(times),
            "p90_ms": times[int(0.9 * (len(times) - 1))], "threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(TEACHER if TEACHER.exists() else "minilm-l6"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/export_baseline.json"))
    args = parser.parse_args()

    loaded = load_model(args.model)
    vocab = len(loaded.tokenizer)
    rows = [{"artifact": "torch eager", "size_bytes": None,
             **torch_latency(loaded.module, vocab, 128, args.threads, args.warmup, args.runs)}]
    with tempfile.TemporaryDirectory() as tmp:
        for target in ("x86-cpu", "arm64-phone"):
            profile = dataclasses.replace(load_profile(target), threads=args.threads,
                                          scheme="fp32")
            result = export(loaded.module, parity_sample(loaded.tokenizer, 128), profile,
                            Path(tmp) / target)
            measured = bench(result.path, profile, warmup=args.warmup, runs=args.runs,
                             seq_len=128, vocab_size=vocab)
            # the artifact lived in a temporary folder: name it, do not point at it
            rows.append({**measured, "artifact": f"{result.format} fp32 ({target})",
                         "size_bytes": result.size_bytes,
                         "parity_max_abs_diff": result.max_abs_diff})
    base = rows[0]["p50_ms"]
    for row in rows:
        row["speedup_vs_torch"] = base / row["p50_ms"]
    report = {"model": args.model, "batch": 1, "seq_len": 128, "threads": args.threads,
              "runs": args.runs, "rows": rows}
    atomic_write_json(args.out, report)
    print(f"{'artifact':<28}{'p50 ms':>9}{'p90 ms':>9}{'size MB':>9}{'x torch':>9}")
    for row in rows:
        size = f"{row['size_bytes'] / 1e6:.1f}" if row["size_bytes"] else "-"
        print(f"{row['artifact']:<28}{row['p50_ms']:>9.2f}{row['p90_ms']:>9.2f}{size:>9}"
              f"{row['speedup_vs_torch']:>9.2f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
