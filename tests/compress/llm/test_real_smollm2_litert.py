"""SmolLM2-135M through `llm export --target arm64-phone-llm` (litert-torch's generative API,
dynamic int8) and `llm bench`: slow (the conversion takes ~20 min on a loaded 2-core host) and
skipped without the llm extra (the registry GGUF is converted by transformers' gguf loader)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                                     for m in ("gguf", "accelerate")),
                                 reason="needs the llm extra: pip install 'edgecompress[llm]'")]


def test_smollm2_exports_through_the_gate_and_benches_when_targeting_arm64_phone_llm(tmp_path):
    out = tmp_path / "smollm2-tflite"
    result = CliRunner().invoke(app, ["llm", "export", "smollm2-135m", "--target",
                                      "arm64-phone-llm", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "llm_export.json").read_text())
    assert record["gate"]["passed"] and record["size_mb"] < 300
    assert record["builder"]["example"] == "smollm"
    paris = record["gate"]["greedy"][0]
    assert paris["prompt"] == "The capital of France is" and "Paris" in paris["text"]
    result = CliRunner().invoke(app, ["llm", "bench", str(out / record["artifact"]),
                                      "--repeats", "1", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["rows"][0]
    assert set(row["ttft_ms"]) == {"128", "512"} and row["decode_tok_s"] > 1
