"""SmolLM2-135M through `llm export --target x86-cpu-llm` and `llm bench`: slow, and skipped
without the llm extra (the registry GGUF, converted once; the builder takes ~1 minute)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                                     for m in ("gguf", "accelerate", "onnxruntime_genai")),
                                 reason="needs the llm extra: pip install 'edgecompress[llm]'")]


def test_smollm2_exports_through_the_gate_and_benches_when_targeting_x86_cpu_llm(tmp_path):
    out = tmp_path / "smollm2-onnx"
    result = CliRunner().invoke(app, ["llm", "export", "smollm2-135m", "--target", "x86-cpu-llm",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "llm_export.json").read_text())
    assert record["gate"]["passed"] and record["size_mb"] < 200
    paris = record["gate"]["greedy"][0]
    assert paris["prompt"] == "The capital of France is" and "Paris" in paris["text"]
    result = CliRunner().invoke(app, ["llm", "bench", str(out), "--repeats", "1", "--threads", "1",
                                      "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["rows"][0]
    assert set(row["ttft_ms"]) == {"128", "512"} and row["decode_tok_s"] > 1
