"""Does structured pruning make the exported model really smaller and faster? One run, real model.

On the fine-tuned RT teacher (~/.cache/edgecompress/teachers/minilm-l6-rt-polarity; falls back to
minilm-l6 with a fresh, untrained head, whose accuracy then means nothing) it measures, for
  original | heads+ffn (50 % of heads and of FFN neurons, gradient importance on 256 RT train
  sentences) | vocab (tokens of the RT train split) | all (both):
parameters, safetensors size, ONNX / TFLite fp32 size and p50 latency (1 thread, batch 1 x 128,
same run, interleaved repeats), and RT test accuracy before any recovery.

    python benchmarks/prune_speedup.py [--out prune_speedup.json] [--runs 50] [--no-tflite]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecompress.compress.data.datasets import load_dataset, sample_texts  # noqa: E402
from edgecompress.compress.evaluation.artifacts import parity_sample  # noqa: E402
from edgecompress.compress.evaluation.evaluate import classification_metrics, predict  # noqa: E402
from edgecompress.compress.models.loading import load_model, save_model  # noqa: E402
from edgecompress.compress.prune import PruneConfig, Samples, count_params, prune_model  # noqa: E402
from edgecompress.fsutil import cache_root  # noqa: E402
from edgecompress.targets import bench, export, load_profile, torch_runner  # noqa: E402

VARIANTS = {
    "heads+ffn": dict(heads=0.5, ffn=0.5),
    "vocab": dict(vocab_corpus="rt-polarity"),
    "all": dict(heads=0.5, ffn=0.5, vocab_corpus="rt-polarity"),
}


def load_teacher():
    """(LoadedModel, description): the fine-tuned teacher if cached, else minilm-l6 + fresh head."""
    teacher = cache_root() / "teachers" / "minilm-l6-rt-polarity"
    if (teacher / "model.safetensors").exists():
        return load_model(teacher), str(teacher)
    return load_model("minilm-l6", num_labels=2), "minilm-l6 with an UNTRAINED head"


def prune_variants(original, data) -> dict:
    """name -> reloaded pruned LoadedModel (saved and reloaded, as users get it) + report."""
    train = sample_texts(data.split("train"), 256, seed=0)
    samples = Samples(train.texts, train.labels, batch_size=16, max_length=128)
    out, keep = {}, Path(tempfile.mkdtemp(prefix="prune-bench-"))
    for name, options in VARIANTS.items():
        began = time.perf_counter()
        outcome = prune_model(copy.deepcopy(original), PruneConfig(**options), samples)
        save_model(outcome.loaded, keep / name)
        out[name] = (load_model(keep / name), outcome.report, time.perf_counter() - began)
    return out


def accuracy(loaded, split, reference=None) -> tuple[dict, np.ndarray]:
    pred = predict(torch_runner(loaded.module), loaded.tokenizer, list(split.texts)).argmax(1)
    metrics = classification_metrics(np.asarray(split.labels), pred, 2, reference)
    return metrics.to_json(), pred


def safetensors_bytes(loaded) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        save_model(loaded, Path(tmp))
        return sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors"))


def latency(models: dict, target: str, runs: int, repeats: int, work: Path) -> dict:
    """name -> {size_bytes, p50_ms (median of repeats), p50_repeats}, 1 thread, interleaved."""
    profile = dataclasses.replace(load_profile(target), threads=1, scheme="fp32")
    vocab = min(len(m.tokenizer) for m in models.values())  # bench ids valid in every model
    paths = {}
    for name, loaded in models.items():
        sample = parity_sample(loaded.tokenizer, profile.seq_len)
        paths[name] = export(loaded.module, sample, profile, work, name=f"{target}-{name}").path
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, path in paths.items():
            measured = bench(path, profile, warmup=10, runs=runs, vocab_size=vocab)
            times[name].append(measured["p50_ms"])
    return {name: {"size_bytes": paths[name].stat().st_size,
                   "p50_ms": statistics.median(times[name]), "p50_repeats": times[name]}
            for name in models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("prune_speedup.json"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-tflite", action="store_true")
    args = parser.parse_args()
    original, source = load_teacher()
    data = load_dataset("rt-polarity")
    test = data.split("test")
    variants = prune_variants(original, data)
    models = {"original": original, **{n: v[0] for n, v in variants.items()}}
    result = {"model": source, "host_note": "1 thread, batch 1 x 128, this shared host", "rows": {}}
    acc0, pred0 = accuracy(original, test)
    for name, loaded in models.items():
        acc = acc0 if name == "original" else accuracy(loaded, test, pred0)[0]
        row = {"params": count_params(loaded), "safetensors_bytes": safetensors_bytes(loaded),
               "vocab": len(loaded.tokenizer), "accuracy": acc}
        if name in variants:
            row["shapes"] = variants[name][1]["shapes_after"]
            row["prune_seconds"] = round(variants[name][2], 1)
        result["rows"][name] = row
    with tempfile.TemporaryDirectory(prefix="prune-bench-art-") as work:
        targets = ["x86-cpu"] + ([] if args.no_tflite else ["arm64-phone"])
        for target in targets:
            for name, measured in latency(models, target, args.runs, args.repeats,
                                          Path(work)).items():
                result["rows"][name][target] = measured
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)


def print_table(result: dict) -> None:
    print(f"model: {result['model']} ({result['host_note']})")
    head = f"{'variant':<10} {'params':>11} {'st MB':>7} {'vocab':>6} {'acc':>7} {'agree':>6}"
    head += f" {'onnx MB':>8} {'onnx ms':>8} {'tfl MB':>7} {'tfl ms':>7}"
    print(head)
    for name, row in result["rows"].items():
        onnx, tfl = row.get("x86-cpu", {}), row.get("arm64-phone", {})
        agree = row["accuracy"].get("agreement")
        print(f"{name:<10} {row['params']:>11,} {row['safetensors_bytes'] / 1e6:>7.1f} "
              f"{row['vocab']:>6} {row['accuracy']['accuracy']:>7.2%} "
              f"{'' if agree is None else f'{agree:.1%}':>6} "
              f"{onnx.get('size_bytes', 0) / 1e6:>8.1f} {onnx.get('p50_ms', float('nan')):>8.2f} "
              f"{tfl.get('size_bytes', 0) / 1e6:>7.1f} {tfl.get('p50_ms', float('nan')):>7.2f}")


if __name__ == "__main__":
    main()
