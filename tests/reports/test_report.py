import json

import pytest

from edgecompress.errors import UserError
from edgecompress.reports import build_report, render_markdown, write_report


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


def test_report_rows_carry_the_measured_numbers_when_run_dir_is_complete(run_dir):
    report = build_report(run_dir)
    (row,) = report["rows"]
    assert row["p50_ms"] == 16.04 and row["p90_ms"] == 17.5
    assert row["size_bytes"] == 90_000_123  # bench measures the file; it wins over the manifest
    assert row["accuracy"] == 0.8215 and row["agreement"] == 0.9995
    assert row["parity_max_abs_diff"] == 2e-6
    assert report["teacher"]["accuracy"] == 0.82
    assert "x86_64, 2 cpus" in report["latency_note"]


def test_markdown_states_latency_is_host_measured_and_lists_the_row(run_dir):
    markdown = render_markdown(build_report(run_dir))
    assert "measured on this host" in markdown
    assert "| x86-cpu | onnx | fp32 | 90.00 | 16.04 | 17.50 | 82.15% [80.4%, 83.8%] | 99.95% |" \
        in markdown


def test_write_report_writes_json_and_markdown(run_dir):
    paths = write_report(run_dir)
    assert sorted(p.name for p in paths) == ["report.json", "report.md"]
    assert json.loads((run_dir / "report.json").read_text())["rows"][0]["target"] == "x86-cpu"


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        build_report(tmp_path)


def test_report_shows_dashes_when_an_artifact_was_not_benchmarked(run_dir):
    (run_dir / "artifacts" / "x86-cpu" / "bench.json").unlink()
    markdown = render_markdown(build_report(run_dir))
    assert "| x86-cpu | onnx | fp32 | 90.00 | — | — |" in markdown
