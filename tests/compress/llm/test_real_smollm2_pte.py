"""SmolLM2-135M through `llm export --target android-xnnpack-llm`, `llm eval` and `llm bench`:
slow, and skipped without the llm and executorch extras (the registry GGUF, converted once; the
export takes minutes of CPU)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                                     for m in ("gguf", "accelerate", "executorch")),
                                 reason="needs the llm and executorch extras: pip install "
                                        "'edgecompress[llm,executorch]'")]


def test_smollm2_exports_through_the_gate_and_benches_when_targeting_android_xnnpack_llm(
        tmp_path):
    out = tmp_path / "smollm2-pte"
    result = CliRunner().invoke(app, ["llm", "export", "smollm2-135m", "--target",
                                      "android-xnnpack-llm", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "llm_export.json").read_text())
    assert record["gate"]["passed"] and record["size_mb"] < 200
    assert record["builder"]["qlinear"] == "8da4w-mixed"
    result = CliRunner().invoke(app, ["llm", "eval", str(out / "model.pte"), "--windows", "2",
                                      "--max-new-tokens", "0", "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output[result.output.index("{"):])
    assert evaluated["runtime"] == "pte" and evaluated["kl"] < record["gate"]["kl_max"]
    result = CliRunner().invoke(app, ["llm", "bench", str(out / "model.pte"), "--repeats", "1",
                                      "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["rows"][0]
    assert set(row["ttft_ms"]) == {"128", "512"} and row["decode_tok_s"] > 1
