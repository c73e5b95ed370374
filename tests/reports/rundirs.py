"""Run directories written as the stages write them, for report tests (JSON files only)."""

import json

HOST = {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+", "arch": "x86_64",
        "isa": ["amx_int8", "avx2", "avx512_vnni"], "cores": 16, "os": "Linux 6.8",
        "python": "3.11.7", "runtimes": {"onnxruntime": "1.32.0"}, "threads": 2}
VS_TEACHER = {"delta": -0.6, "delta_ci95": [-1.4, 0.2], "n": 2000, "model_only": 14,
              "reference_only": 26, "disagreements": 41, "p_value": 0.08, "significant": False}


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def add_artifact(run_dir, target="x86-cpu", host="x86_64, 2 cpus", vs_teacher=None, fmt="onnx"):
    """artifacts/<target>/{manifest,eval,bench}.json; `host` goes into bench.json as given."""
    folder = run_dir / "artifacts" / target
    write_json(folder / "manifest.json",
               {"target": target, "format": fmt, "scheme": "fp32", "runtime": "onnxruntime",
                "threads": 2, "artifact": "model.onnx", "size_bytes": 90_000_000,
                "parity": {"max_abs_diff": 2e-6, "agreement": 1.0}})
    evaluation = {"accuracy": 0.8215, "ci95": [0.804, 0.838], "n": 2000, "agreement": 0.9995}
    if vs_teacher is not None:
        evaluation["vs_teacher"] = vs_teacher
    write_json(folder / "eval.json", evaluation)
    bench = {"p50_ms": 16.04, "p90_ms": 17.5, "p99_ms": 20.1, "p50_real_ms": 4.25,
             "size_bytes": 90_000_123,
             "gzip_bytes": 83_000_000, "peak_rss_mb": 310.0, "threads": 2}
    if host is not None:
        bench["host"] = host
    write_json(folder / "bench.json", bench)
    return folder


def make_run(run_dir, **artifact):
    write_json(run_dir / "run.json", {"model": "minilm-l6", "dataset": "rt-polarity"})
    write_json(run_dir / "teacher" / "eval.json",
               {"accuracy": 0.82, "ci95": [0.80, 0.84], "n": 2000, "format": "torch"})
    add_artifact(run_dir, **artifact)
    return run_dir


def files_in(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
