"""The tiny random Llama of tiny_genai.py converted by litert-torch's generative API (a KV cache
of 128, prefill signatures of 16 and 64 tokens), once per test process: the converter takes
~45 s a scheme on a loaded 2-core host."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import pytest

from tests.compress.llm.export_helpers import write_profile
from tests.targets.llm.tiny_genai import _root, tiny_llama_dir

# litert-torch / ai-edge-litert are edgecompress dependencies (not an extra); a broken install
# skips rather than fails
needs_litert = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None
        for m in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")),
    reason="needs litert-torch, ai-edge-litert and ai-edge-quantizer (edgecompress's own "
           "dependencies): pip install -e .")
KV_CACHE, PREFILL = 128, (16, 64)

def write_litert_profile(folder: Path, *, scheme: str = "dynamic-int8", kl_max: float = 0.5,
                         top1_min: float = 0.8) -> str:
    return write_profile(folder, name="tiny-phone-llm", format="tflite", runtime="litert",
                         scheme=scheme, kl_max=kl_max, top1_min=top1_min,
                         extra=f"kv_cache_size = {KV_CACHE}\nprefill_lengths = {list(PREFILL)}\n")


@lru_cache(maxsize=2)
def tiny_tflite(scheme: str) -> Path:
    """The tiny Llama's .tflite in `scheme` (with the EOS sidecar beside it)."""
    from edgecompress.targets.llm.export_litert import convert_litert

    _, path = convert_litert(tiny_llama_dir(), _root() / f"litert-{scheme}", scheme=scheme,
                             kv_cache_size=KV_CACHE, prefill_lengths=PREFILL)
    return path
