"""The real-speedup gate: export the unpruned and the pruned model for a target, bench both in
the same run, and call it a gain only when the measurement says so.

Noise: each artifact is benched `repeats` times, interleaved (before, after, before, after) so
drift on a shared machine hits both; a latency gain must beat max(5 %, the larger relative spread
between one artifact's repeats). A size gain must beat 1 % (file sizes do not jitter).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from edgecompress.compress.evaluation.artifacts import parity_sample
from edgecompress.compress.models.loading import LoadedModel

LATENCY_NOISE_FLOOR = 0.05  # latency ratio above 0.95: no gain
SIZE_NOISE_FLOOR = 0.01


def gate_verdict(target: str, before_ms: list[float], after_ms: list[float], before_bytes: int,
                 after_bytes: int) -> dict:
    """Compare repeated p50 latencies (ms) and sizes; returns the manifest's speedup_gate."""
    before, after = statistics.median(before_ms), statistics.median(after_ms)
    noise = max(_spread(before_ms), _spread(after_ms))
    threshold = max(LATENCY_NOISE_FLOOR, noise)
    latency_ratio, size_ratio = after / before, after_bytes / before_bytes
    latency_gain = latency_ratio < 1 - threshold
    size_gain = size_ratio < 1 - SIZE_NOISE_FLOOR
    return {"target": target, "latency_ratio": round(latency_ratio, 4),
            "size_ratio": round(size_ratio, 4),
            "verdict": "gain" if latency_gain or size_gain else "no-gain",
            "latency_gain": latency_gain, "size_gain": size_gain,
            "noise_threshold": round(threshold, 4),
            "p50_ms": {"before": before, "after": after},
            "p50_ms_repeats": {"before": before_ms, "after": after_ms},
            "size_bytes": {"before": before_bytes, "after": after_bytes}}


def _spread(values: list[float]) -> float:
    """(max - min) / median of one artifact's repeated p50s; 0 for a single run."""
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0


def speedup_gate(before: LoadedModel, after: LoadedModel, target, *, runs: int = 50,
                 warmup: int = 5, repeats: int = 2) -> dict:
    """Export both models for `target` (name, path or Profile) and bench them; see gate_verdict.

    Artifacts go to a temporary directory and are removed. Raises ParityError when an export does
    not match torch, UserError for an unknown target.
    """
    from edgecompress.targets import bench, export, load_profile

    profile = load_profile(target) if isinstance(target, (str, Path)) else target
    # Bench ids must exist in both vocabularies (a pruned one may be tiny).
    vocab = min(len(before.tokenizer), len(after.tokenizer))
    with tempfile.TemporaryDirectory(prefix="edgecompress-gate-") as tmp:
        paths, sizes = {}, {}
        for name, loaded in (("before", before), ("after", after)):
            sample = parity_sample(loaded.tokenizer, profile.seq_len)
            result = export(loaded.module, sample, profile, Path(tmp), name=name)
            paths[name], sizes[name] = result.path, result.size_bytes
        timings = {"before": [], "after": []}
        for _ in range(repeats):
            for name in ("before", "after"):
                measured = bench(paths[name], profile, warmup=warmup, runs=runs,
                                 vocab_size=vocab)
                timings[name].append(measured["p50_ms"])
    return gate_verdict(profile.name, timings["before"], timings["after"], sizes["before"],
                        sizes["after"])
