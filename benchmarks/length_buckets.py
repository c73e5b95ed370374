"""What length signatures buy a fixed-shape TFLite artifact: one signature at 128 tokens vs one
per bucket (32 / 64 / 128), same checkpoint, same scheme, same host, one run.

For each variant: the project's export (parity gate on every signature), file size, p50 at batch
1 x 128 tokens, p50 over 200 seeded test sentences at their real token counts (the bench child,
rounds interleaved), test accuracy and the wall time of evaluating the whole test split (what a
run's eval stage pays per TFLite target).

    .venv/bin/python benchmarks/length_buckets.py CHECKPOINT [--target arm64-phone]
        [--scheme dynamic-int8] [--dataset rt-polarity] [--threads 1] [--rounds 3]

Writes JSON (default benchmarks/results/length_buckets.json) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.artifacts import export_artifact, open_evaluable
from edgecompress.compress.evaluation.evaluate import classification_metrics, split_predictions
from edgecompress.compress.models.loading import load_model
from edgecompress.compress.pipeline.target_stages import EVAL_MAX_LENGTH, real_lengths
from edgecompress.fsutil import atomic_write_json
from edgecompress.targets import bench, host_info, load_profile


def _variants(target: str, scheme: str, threads: int) -> dict:
    profile = dataclasses.replace(load_profile(target), scheme=scheme, threads=threads)
    return {"one signature (128)": dataclasses.replace(profile, buckets=()),
            "signatures 32/64/128": dataclasses.replace(profile, buckets=(32, 64, 128))}


def _export(checkpoint: str, profile, folder: Path, dataset: str) -> Path:
    if profile.scheme == "fp32":
        manifest = export_artifact(load_model(checkpoint), profile, folder, source=checkpoint)
    else:
        from edgecompress.compress.quantize.stage import (
            QuantizeConfig,
            QuantizeRequest,
            run_quantize,
        )

        config = QuantizeConfig(target=str(_profile_file(profile, folder.parent)),
                                scheme=profile.scheme)
        manifest = run_quantize(QuantizeRequest(model=checkpoint, out=folder, config=config,
                                                force=True, data=DataRef(dataset)))
    return folder / manifest["artifact"]


def _profile_file(profile, where: Path) -> Path:
    """The variant as a profile file (the quantize stage loads targets by name or path)."""
    source = profile.source.read_text()
    lines = [line for line in source.splitlines() if not line.startswith("buckets")]
    if profile.buckets:
        at = lines.index("seq_len = 128") + 1
        lines.insert(at, f"buckets = {list(profile.buckets)}")
    lines = [f"threads = {profile.threads}" if line.startswith("threads") else line
             for line in lines]
    path = where / f"{profile.name}-{len(profile.seq_buckets)}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _evaluate(artifact: Path, data: DataRef) -> dict:
    start = time.perf_counter()
    model = open_evaluable(artifact, threads=1)
    split = data.for_model(model.labels).split("test")
    pred = split_predictions(model.runner, model.tokenizer, split, max_length=EVAL_MAX_LENGTH)
    seconds = time.perf_counter() - start
    import numpy as np

    truth = np.asarray(split.labels)
    metrics = classification_metrics(truth, pred, len(model.labels)).to_json()
    return {"accuracy": metrics["accuracy"], "n": metrics["n"], "eval_s": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--target", default="arm64-phone")
    parser.add_argument("--scheme", default="dynamic-int8")
    parser.add_argument("--dataset", default="rt-polarity")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/length_buckets.json"))
    args = parser.parse_args()
    data = DataRef(args.dataset)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {}
        for name, profile in _variants(args.target, args.scheme, args.threads).items():
            folder = Path(tmp) / name.replace(" ", "_").replace("/", "-")
            artifacts[name] = (_export(args.checkpoint, profile, folder, args.dataset), profile)
        lengths = real_lengths(next(iter(artifacts.values()))[0].parent, data.load())
        timed = {name: [] for name in artifacts}
        for _ in range(args.rounds):  # interleaved: a noisy minute hits every variant
            for name, (path, profile) in artifacts.items():
                timed[name].append(bench(path, profile, runs=args.runs, lengths=lengths))
        for name, (path, _profile) in artifacts.items():
            runs = timed[name]
            rows[name] = {"size_mb": round(path.stat().st_size / 1e6, 2),
                          "p50_ms_seq128": statistics.median(r["p50_ms"] for r in runs),
                          "p50_real_ms": statistics.median(r["p50_real_ms"] for r in runs),
                          "p50_real_ms_rounds": [round(r["p50_real_ms"], 3) for r in runs],
                          "real_shape": runs[0]["real_shape"], **_evaluate(path, data)}
    result = {"checkpoint": args.checkpoint, "target": args.target, "scheme": args.scheme,
              "threads": args.threads, "rounds": args.rounds, "real_lengths": len(lengths),
              "host": host_info(args.threads), "rows": rows}
    atomic_write_json(args.out, result)
    print(f"{args.target} {args.scheme}, {args.threads} thread(s), host ISA "
          f"{', '.join(result['host']['isa'])}")
    print("| variant | MB | p50 ms (seq 128) | p50 ms (real lengths) | accuracy | eval s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['size_mb']:.2f} | {row['p50_ms_seq128']:.2f} "
              f"| {row['p50_real_ms']:.2f} | {row['accuracy']:.2%} | {row['eval_s']:.0f} |")


if __name__ == "__main__":
    main()
