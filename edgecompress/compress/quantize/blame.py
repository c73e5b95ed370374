"""Blame: which Transformer block's output the quantized artifact gets most wrong, vs torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgecompress.targets.inputs import module_inputs


def layer_blame(artifact: Path, module: nn.Module, scopes: list[str], rows: list[dict],
                fixed_shape: tuple[int, int] | None, fp32: Path | None = None) -> list[dict]:
    """Per-layer error of the artifact vs torch on `rows`, worst first.

    For each scope: SNR in dB and relative MSE (error energy / signal energy) of the layer's
    output over real (unpadded) tokens; `fp32` (the fp32 artifact) names the tapped tensors.
    Returns [{layer, snr_db, rel_mse}] sorted by rel_mse, worst first.
    """
    from edgecompress.targets.taps import artifact_taps

    if fixed_shape and rows and "pixel_values" not in rows[0]:  # text: exactly (1, seq), padded
        rows = [{k: np.pad(v, ((0, 0), (0, fixed_shape[1] - v.shape[1]))) for k, v in r.items()}
                for r in rows]
    got = artifact_taps(artifact, module, scopes, rows, fp32=fp32)
    want = _torch_taps(module, list(got), rows)
    blame = []
    for scope in got:
        signal = error = 0.0
        for row, ref, out in zip(rows, want[scope], got[scope]):
            # (S,) real tokens; every patch token of an image is real
            real = (row["attention_mask"][0].astype(bool) if "attention_mask" in row
                    else np.ones(ref.shape[1], dtype=bool))
            ref, out = ref[0][real].astype(np.float64), out.reshape(ref.shape)[0][real]
            signal += float(np.sum(ref ** 2))
            error += float(np.sum((ref - out) ** 2))
        rel = error / max(signal, 1e-30)
        blame.append({"layer": scope, "rel_mse": rel,
                      "snr_db": float(10 * np.log10(1 / max(rel, 1e-30)))})
    return sorted(blame, key=lambda b: -b["rel_mse"])


def _torch_taps(module: nn.Module, scopes: list[str], rows: list[dict]) -> dict[str, list]:
    """scope -> (1, S, H) outputs of that submodule per row, via forward hooks."""
    out: dict[str, list] = {s: [] for s in scopes}
    hooks = []
    for scope in scopes:
        def hook(_module, _inputs, output, scope=scope):
            value = output[0] if isinstance(output, tuple) else output
            out[scope].append(value.detach().float().numpy())
        hooks.append(module.get_submodule(scope).register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for row in rows:
                module(*(torch.from_numpy(row[name]) for name in module_inputs(module)))
    finally:
        for handle in hooks:
            handle.remove()
    return out
