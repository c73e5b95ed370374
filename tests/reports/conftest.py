"""A finished run directory written as the stages write it: one x86-cpu ONNX artifact."""

import json

import pytest


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture()
def run_dir(tmp_path):
    _write(tmp_path / "run.json", {"model": "minilm-l6", "dataset": "rt-polarity"})
    _write(tmp_path / "teacher" / "eval.json",
           {"accuracy": 0.82, "ci95": [0.80, 0.84], "n": 2000, "format": "torch"})
    folder = tmp_path / "artifacts" / "x86-cpu"
    _write(folder / "manifest.json",
           {"target": "x86-cpu", "format": "onnx", "scheme": "fp32", "runtime": "onnxruntime",
            "threads": 2, "artifact": "model.onnx", "size_bytes": 90_000_000,
            "parity": {"max_abs_diff": 2e-6, "agreement": 1.0}})
    _write(folder / "eval.json", {"accuracy": 0.8215, "ci95": [0.804, 0.838], "n": 2000,
                                  "agreement": 0.9995})
    _write(folder / "bench.json", {"p50_ms": 16.04, "p90_ms": 17.5, "p99_ms": 20.1,
                                   "size_bytes": 90_000_123, "gzip_bytes": 83_000_000,
                                   "peak_rss_mb": 310.0, "threads": 2, "host": "x86_64, 2 cpus"})
    return tmp_path
