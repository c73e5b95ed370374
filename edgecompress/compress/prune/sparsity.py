"""Unstructured and N:M magnitude sparsity of the encoder's Linear weights.

Zeros keep the tensor shapes, so dense kernels (ONNX Runtime, XNNPACK) run exactly as fast as
before and the fp32 file is exactly as big: the gain is in *compressed* size only, and the
manifest says so. Embeddings, LayerNorms and the classifier are left dense.
"""

from __future__ import annotations

import torch

from edgecompress.compress.models.arch import blocks
from edgecompress.compress.models.loading import LoadedModel

EFFECT = "size-only: zeros shrink the compressed (gzip) size; dense runtimes run no faster"


def _linears(loaded: LoadedModel):
    for b in blocks(loaded):
        yield from (b.query, b.key, b.value, b.output, b.ffn_in, b.ffn_out)


def magnitude_sparsity(loaded: LoadedModel, fraction: float) -> dict:
    """Zero the smallest-|w| `fraction` of each encoder Linear weight; returns a summary."""
    zeros = total = 0
    with torch.no_grad():
        for linear in _linears(loaded):
            w = linear.weight  # (out, in)
            k = int(fraction * w.numel())
            if k > 0:
                threshold = w.abs().flatten().kthvalue(k).values
                w.masked_fill_(w.abs() <= threshold, 0.0)
            zeros += int((w == 0).sum())
            total += w.numel()
    return {"kind": "unstructured", "fraction": fraction, "zero_fraction": zeros / max(total, 1),
            "effect": EFFECT}


def nm_sparsity(loaded: LoadedModel, n: int, m: int) -> dict:
    """Keep the n largest |w| of every m consecutive input weights; returns a summary.

    Matrices whose input width is not a multiple of m are left dense and counted as skipped.
    """
    zeros = total = skipped = 0
    with torch.no_grad():
        for linear in _linears(loaded):
            w = linear.weight  # (out, in)
            total += w.numel()
            if w.shape[1] % m:
                skipped += 1
                continue
            groups = w.view(w.shape[0], -1, m)  # (out, in / m, m)
            drop = groups.abs().argsort(dim=-1)[..., : m - n]  # the m - n smallest per group
            groups.scatter_(-1, drop, 0.0)
            zeros += int((w == 0).sum())
    return {"kind": "n:m", "n": n, "m": m, "zero_fraction": zeros / max(total, 1),
            "skipped_matrices": skipped, "effect": EFFECT}
