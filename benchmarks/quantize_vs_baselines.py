"""edgecompress quantization vs the plain tools, side by side, in one process and one run.

Baselines, from the same fp32 teacher:
  - ONNX: `onnxruntime.quantization.quantize_dynamic` with its defaults on the fp32 ONNX export;
  - TFLite: litert-torch's documented dynamic int8 conversion (`litert_torch.convert` with a
    PT2E quantizer, symmetric per-channel, dynamic activations).
edgecompress: `run_quantize` for the same targets (x86-cpu ONNX, arm64-phone TFLite), with their
default schemes. Each artifact: test accuracy (95 % CI) on rt-polarity, size, and p50 latency
with the target's runtime and threads (child process, median of `--repeats`). Ratios are
edgecompress / baseline; accuracy delta in points.

    .venv/bin/python benchmarks/quantize_vs_baselines.py [--model DIR] [--runs 100]

Writes JSON (default benchmarks/results/quantize_vs_baselines.json) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np

from edgecompress.compress.core.artifacts import parity_sample
from edgecompress.compress.core.data import load_dataset
from edgecompress.compress.core.evaluate import classification_metrics, predict
from edgecompress.compress.core.models import load_model
from edgecompress.compress.quantize.stage import QuantizeConfig, QuantizeRequest, run_quantize
from edgecompress.fsutil import atomic_write_json, cache_root
from edgecompress.targets import bench, export, load_profile, load_runner

TEACHER = cache_root() / "teachers" / "minilm-l6-rt-polarity"
TARGETS = {"onnx": "x86-cpu", "tflite": "arm64-phone"}


def onnx_baseline(fp32: Path, out: Path) -> Path:
    """Plain quantize_dynamic, every default left alone."""
    from onnxruntime.quantization import quantize_dynamic

    path = out / "ort_quantize_dynamic.onnx"
    quantize_dynamic(str(fp32), str(path))
    return path


def litert_baseline(loaded, profile, out: Path) -> Path:
    """litert-torch's dynamic int8: PT2E symmetric per-channel dynamic quantizer at convert."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer as pt2eq
    from litert_torch.quantize.quant_config import QuantConfig

    quantizer = pt2eq.PT2EQuantizer().set_global(
        pt2eq.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    sample = parity_sample(loaded.tokenizer, profile.seq_len)
    ids = np.zeros((1, profile.seq_len), np.int32)
    mask = np.zeros((1, profile.seq_len), np.int32)
    n = sample["input_ids"].shape[1]
    ids[0, :n], mask[0, :n] = sample["input_ids"][0], sample["attention_mask"][0]
    kwargs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    model = litert_torch.convert(loaded.module.eval(), sample_kwargs=kwargs,
                                 quant_config=QuantConfig(pt2e_quantizer=quantizer))
    path = out / "litert_torch_dynamic_int8.tflite"
    model.export(str(path))
    return path


def measure(path: Path, profile, tokenizer, test, runs: int, repeats: int) -> dict:
    """Accuracy (95 % CI), size and median-of-repeats p50 latency of one artifact."""
    logits = predict(load_runner(path, threads=1), tokenizer, list(test.texts),
                     max_length=profile.seq_len)
    metrics = classification_metrics(np.asarray(test.labels), logits.argmax(1), logits.shape[1])
    p50s = [bench(path, profile, warmup=10, runs=runs)["p50_ms"] for _ in range(repeats)]
    return {"artifact": str(path), "size_bytes": path.stat().st_size,
            "accuracy": metrics.accuracy, "ci95": list(metrics.ci95), "n": metrics.n,
            "p50_ms": statistics.median(p50s), "p50_ms_repeats": p50s,
            "threads": profile.threads}


def ratios(ours: dict, base: dict) -> dict:
    return {"latency": ours["p50_ms"] / base["p50_ms"],
            "size": ours["size_bytes"] / base["size_bytes"],
            "accuracy": ours["accuracy"] / base["accuracy"],
            "accuracy_delta_points": round((ours["accuracy"] - base["accuracy"]) * 100, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(TEACHER))
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/quantize_vs_baselines.json"))
    args = parser.parse_args()
    test = load_dataset("rt-polarity").split("test")
    loaded = load_model(args.model)
    results = {"model": args.model, "dataset": "rt-polarity/test", "targets": {}}
    with tempfile.TemporaryDirectory(prefix="quantize-bench-") as tmp:
        tmp = Path(tmp)
        for fmt, target in TARGETS.items():
            profile = load_profile(target)
            fp32 = export(loaded.module, parity_sample(loaded.tokenizer, profile.seq_len),
                          dataclasses.replace(profile, scheme="fp32"), tmp, name=f"fp32-{fmt}",
                          scheme="fp32")
            base_path = (onnx_baseline(fp32.path, tmp) if fmt == "onnx"
                         else litert_baseline(loaded, profile, tmp))
            ours_dir = tmp / f"edgecompress-{target}"
            run_quantize(QuantizeRequest(model=args.model, out=ours_dir,
                                         config=QuantizeConfig(target=target)))
            ours_path = next(ours_dir.glob(f"model{profile.suffix}"))
            rows = {name: measure(path, profile, loaded.tokenizer, test, args.runs, args.repeats)
                    for name, path in (("fp32", fp32.path), ("baseline", base_path),
                                       ("edgecompress", ours_path))}
            rows["edgecompress"]["scheme"] = profile.scheme
            results["targets"][target] = {**rows, "ratios_vs_baseline":
                                          ratios(rows["edgecompress"], rows["baseline"])}
    atomic_write_json(args.out, results)
    _print_table(results)


def _print_table(results: dict) -> None:
    print(f"{'target':<12} {'artifact':<13} {'size MB':>8} {'p50 ms':>8} {'accuracy [95% CI]':>24}")
    for target, rows in results["targets"].items():
        for name in ("fp32", "baseline", "edgecompress"):
            r = rows[name]
            print(f"{target:<12} {name:<13} {r['size_bytes'] / 1e6:8.2f} {r['p50_ms']:8.2f} "
                  f"{r['accuracy']:8.2%} [{r['ci95'][0]:.2%}, {r['ci95'][1]:.2%}]")
        q = rows["ratios_vs_baseline"]
        print(f"{target:<12} ratio ours/baseline: latency {q['latency']:.2f}, size "
              f"{q['size']:.2f}, accuracy {q['accuracy']:.3f} "
              f"({q['accuracy_delta_points']:+.2f} points)")


if __name__ == "__main__":
    main()
