"""Accuracy-aware fallback: keep the most quantization-sensitive layers in float until the dev
accuracy drop is within `max_drop`.

Sensitivity of a layer = relative MSE of the logits (vs torch, on calibration inputs) when only
that layer is quantized and every other Transformer block stays float. Layers are then moved to
float most-sensitive first; each step is quantized from the same fp32 file (calibration ranges
are computed once and reused), evaluated on the dev split and benched, so the result says what
each fallen-back layer cost in latency and size. When no step meets the bound, the most accurate
one is kept and the result says so.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from edgecompress.compress.evaluation.evaluate import split_accuracy
from edgecompress.compress.quantize.integer import encoder_layers
from edgecompress.targets.inputs import row_count

SENSITIVITY_ROWS = 64  # calibration rows the sensitivity pass runs
BENCH_RUNS = 20


def accuracy_fallback(module, base: Path, spec, options, profile, dev, tokenizer,
                      request) -> dict:
    """Run the fallback loop; returns plain JSON (reference, sensitivity, steps, float_layers).

    `base` is the verified fp32 artifact of `module` for `profile`; `options` the QuantOptions
    with calibration samples; `dev` a labelled Split; `request` a QuantizeRequest (max_drop,
    relative). Raises what quantize_artifact raises.
    """
    from edgecompress.targets import torch_runner

    layers = encoder_layers(module)
    reference = _accuracy(torch_runner(module), tokenizer, dev, profile)
    allowed = request.max_drop * (reference if request.relative else 0.01)  # as a fraction
    rows = _batches(options.calibration, SENSITIVITY_ROWS)
    with tempfile.TemporaryDirectory(prefix=".fallback-", suffix=".tmp",
                                     dir=Path(base).parent) as tmp:
        sensitivity = _sensitivity(module, base, spec, options, profile, layers, rows, Path(tmp))
        ranked = [entry["layer"] for entry in sensitivity]
        steps = []
        for k in range(len(ranked) + 1):
            floats = tuple(ranked[:k])
            steps.append(_step(base, spec, options, profile, floats, Path(tmp) / f"k{k}",
                               (dev, tokenizer, reference)))
            if reference - steps[-1]["accuracy"] <= allowed + 1e-12:
                break
    met = reference - steps[-1]["accuracy"] <= allowed + 1e-12
    best = steps[-1] if met else max(steps, key=lambda s: (s["accuracy"], -len(s["float_layers"])))
    result = {"max_drop": request.max_drop, "relative": request.relative,
              "allowed_drop_points": round(allowed * 100, 4), "reference_accuracy": reference,
              "dev_n": len(dev), "sensitivity": sensitivity, "steps": steps, "met": met,
              "float_layers": list(best["float_layers"]), "layer_costs": _costs(steps, best)}
    if not met:
        result["note"] = (f"no configuration met a drop of {result['allowed_drop_points']} points; "
                          f"kept the most accurate ({best['accuracy']:.2%}, "
                          f"{len(best['float_layers'])} layers in float)")
    return result


def _sensitivity(module, base, spec, options, profile, layers, rows, tmp: Path) -> list[dict]:
    """[{layer, logits_rel_mse}] with only that layer quantized, most sensitive first."""
    from edgecompress.targets import load_runner, torch_runner

    reference = np.concatenate([torch_runner(module).run(**r) for r in rows]).astype(np.float64)
    out = []
    for layer in layers:
        others = tuple(name for name in layers if name != layer)
        path = _quantized(base, spec, options, profile, others, tmp / f"only-{layer}")
        runner = load_runner(path, threads=1)
        logits = np.concatenate([runner.run(**r) for r in rows])
        rel = float(np.sum((logits - reference) ** 2) / max(np.sum(reference ** 2), 1e-30))
        out.append({"layer": layer, "logits_rel_mse": rel})
        path.unlink()
    return sorted(out, key=lambda e: -e["logits_rel_mse"])


def _step(base, spec, options, profile, floats, stem: Path, dev_ctx) -> dict:
    """Quantize with `floats` kept in float; dev accuracy, size and bench p50 of the result."""
    from edgecompress.targets import bench, load_runner

    dev, tokenizer, reference = dev_ctx
    path = _quantized(base, spec, options, profile, floats, stem)
    accuracy = _accuracy(load_runner(path, threads=1), tokenizer, dev, profile)
    # ids drawn inside the (possibly pruned) vocabulary, as the run's own bench does
    timing = bench(path, profile, warmup=2, runs=BENCH_RUNS, vocab_size=len(tokenizer))
    return {"float_layers": list(floats), "accuracy": accuracy,
            "drop_points": round((reference - accuracy) * 100, 4),
            "size_bytes": path.stat().st_size, "p50_ms": timing["p50_ms"]}


def _quantized(base, spec, options, profile, floats, stem: Path) -> Path:
    from edgecompress.targets.quantize import quantize_artifact

    path = stem.with_suffix(profile.suffix)
    quantize_artifact(base, path, spec, dataclasses.replace(options, float_scopes=floats),
                      profile.fixed_shape)
    return path


def _costs(steps: list[dict], best: dict) -> list[dict]:
    """What moving each kept-float layer to float cost, step over step (latency and size)."""
    costs = []
    for before, after in zip(steps, steps[1:]):
        if len(after["float_layers"]) > len(best["float_layers"]):
            break
        costs.append({"layer": after["float_layers"][-1],
                      "accuracy_gain_points": round(
                          (after["accuracy"] - before["accuracy"]) * 100, 4),
                      "latency_ms": round(after["p50_ms"] - before["p50_ms"], 4),
                      "size_bytes": after["size_bytes"] - before["size_bytes"]})
    return costs


def _accuracy(runner, tokenizer, split, profile) -> float:
    return split_accuracy(runner, tokenizer, split, max_length=profile.seq_len)


def _batches(batches, limit: int) -> list[dict]:
    """The calibration batches, cut to at most `limit` rows in total."""
    out, left = [], limit
    for batch in batches:
        if left <= 0:
            break
        out.append({k: v[:left] for k, v in batch.items()})
        left -= row_count(out[-1])
    return out
