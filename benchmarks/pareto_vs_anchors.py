"""The demo's best artifact per CPU target against the anchors, side by side in one run.

Anchors, all from the demo's fp32 teacher:
  - the teacher's fp32 ONNX (the baseline every ratio is against),
  - plain `onnxruntime.quantization.quantize_dynamic` on that ONNX,
  - litert-torch's default dynamic int8 conversion.
Every artifact is timed at batch 1 x seq 128 on 1 thread with its own runtime (child process,
median of --repeats), and evaluated on the rt-polarity test split (the demo's artifacts reuse
the eval.json the run wrote). The aim for the demo recipe: at most 1.0 point below the fp32
teacher, at least 8x smaller and at least 5x faster than its fp32 ONNX. This reports what is
reached, not the aim.

    .venv/bin/python benchmarks/pareto_vs_anchors.py [--run runs/demo] [--runs 100]

Writes JSON (default benchmarks/results/pareto_vs_anchors.json) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quantize_vs_baselines import litert_baseline, measure, onnx_baseline  # noqa: E402

from edgecompress.compress.data.datasets import load_dataset  # noqa: E402
from edgecompress.compress.evaluation.artifacts import parity_sample  # noqa: E402
from edgecompress.compress.models.loading import load_model  # noqa: E402
from edgecompress.fsutil import atomic_write_json  # noqa: E402
from edgecompress.targets import bench, export, load_profile  # noqa: E402

CPU_TARGETS = ("x86-cpu", "arm64-phone", "rpi5")
AIM = {"max_accuracy_drop_points": 1.0, "min_smaller": 8.0, "min_faster": 5.0}


def one_thread(target: str, **changes):
    return dataclasses.replace(load_profile(target), threads=1, **changes)


def demo_artifact(run: Path, target: str, runs: int, repeats: int) -> dict:
    """The run's artifact for `target`, re-timed on 1 thread; accuracy from its eval.json."""
    folder = run / "artifacts" / target
    manifest = json.loads((folder / "manifest.json").read_text())
    evaluation = json.loads((folder / "eval.json").read_text())
    path = folder / manifest["artifact"]
    profile = one_thread(target, scheme=manifest["scheme"])
    p50s = [bench(path, profile, warmup=10, runs=runs, vocab_size=manifest.get("vocab_size"))
            ["p50_ms"] for _ in range(repeats)]
    return {"artifact": str(path), "scheme": manifest["scheme"], "size_bytes": path.stat().st_size,
            "accuracy": evaluation["accuracy"], "ci95": evaluation["ci95"], "n": evaluation["n"],
            "p50_ms": statistics.median(p50s), "p50_ms_repeats": p50s, "threads": 1}


def versus(ours: dict, base: dict) -> dict:
    return {"smaller": base["size_bytes"] / ours["size_bytes"],
            "faster": base["p50_ms"] / ours["p50_ms"],
            "accuracy_delta_points": round((ours["accuracy"] - base["accuracy"]) * 100, 2)}


def anchors(teacher: Path, tmp: Path, runs: int, repeats: int) -> dict:
    loaded = load_model(teacher)
    test = load_dataset("rt-polarity").split("test")
    onnx_profile = one_thread("x86-cpu", scheme="fp32")
    fp32 = export(loaded.module, parity_sample(loaded.tokenizer, 128), onnx_profile, tmp,
                  name="teacher-fp32", scheme="fp32").path
    tflite_profile = one_thread("arm64-phone", scheme="fp32")
    paths = {"teacher fp32 ONNX": (fp32, onnx_profile),
             "ORT quantize_dynamic": (onnx_baseline(fp32, tmp), onnx_profile),
             "litert-torch dynamic int8": (litert_baseline(loaded, tflite_profile, tmp),
                                           tflite_profile)}
    return {name: measure(path, profile, loaded.tokenizer, test, runs, repeats)
            for name, (path, profile) in paths.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/pareto_vs_anchors.json"))
    args = parser.parse_args()
    teacher = Path(json.loads((args.run / "stages" / "finetune" / "stage.json").read_text())
                   ["output"])
    with tempfile.TemporaryDirectory(prefix="anchors-") as tmp:
        base = anchors(teacher, Path(tmp), args.runs, args.repeats)
    ours = {t: demo_artifact(args.run, t, args.runs, args.repeats) for t in CPU_TARGETS
            if (args.run / "artifacts" / t / "eval.json").exists()}
    reference = base["teacher fp32 ONNX"]
    results = {"run": str(args.run), "teacher": str(teacher), "shape": "1x128", "threads": 1,
               "aim": AIM, "anchors": base, "demo": {}}
    for target, row in ours.items():
        ratios = {name: versus(row, anchor) for name, anchor in base.items()}
        vs_fp32 = ratios["teacher fp32 ONNX"]
        met = {"accuracy": -vs_fp32["accuracy_delta_points"] <= AIM["max_accuracy_drop_points"],
               "smaller": vs_fp32["smaller"] >= AIM["min_smaller"],
               "faster": vs_fp32["faster"] >= AIM["min_faster"]}
        results["demo"][target] = {**row, "versus": ratios, "aim_met": met}
    atomic_write_json(args.out, results)
    _print(results, reference)


def _print(results: dict, reference: dict) -> None:
    print(f"{'artifact':<34}{'MB':>8}{'p50 ms':>9}{'accuracy':>10}"
          f"{'x smaller':>11}{'x faster':>10}")
    rows = [(name, r) for name, r in results["anchors"].items()]
    rows += [(f"demo {t} ({r['scheme']})", r) for t, r in results["demo"].items()]
    for name, r in rows:
        print(f"{name:<34}{r['size_bytes'] / 1e6:8.2f}{r['p50_ms']:9.2f}{r['accuracy']:10.2%}"
              f"{reference['size_bytes'] / r['size_bytes']:11.2f}"
              f"{reference['p50_ms'] / r['p50_ms']:10.2f}")


if __name__ == "__main__":
    main()
