import csv
import json

import pytest

from edgecompress.errors import UserError
from edgecompress.reports import build_report, render_markdown, write_report


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


def test_write_report_writes_json_markdown_csv_and_html(run_dir):
    paths = write_report(run_dir)
    assert sorted(p.name for p in paths) == ["report.csv", "report.html", "report.json",
                                             "report.md"]
    assert json.loads((run_dir / "report.json").read_text())["rows"][0]["target"] == "x86-cpu"
    (line,) = list(csv.DictReader((run_dir / "report.csv").open()))
    assert line["p50_ms"] == "16.04" and line["ci95_low"] == "0.804"
    assert line["pareto_optimal"] == "True"


def test_device_results_become_their_own_rows_marked_device_measured(run_dir, tmp_path):
    results = tmp_path / "pixel8.json"
    results.write_text(json.dumps({"target": "x86-cpu", "format": "onnx", "scheme": "fp32",
                                   "p50_ms": 9.5, "p90_ms": 10.0, "device": "NUC 13"}))
    write_report(run_dir, device_results=results)
    rows = json.loads((run_dir / "report.json").read_text())["rows"]
    assert [r["measured_on"] for r in rows] == ["host", "device"]
    assert rows[1]["p50_ms"] == 9.5
    assert "| x86-cpu (device) | onnx | fp32 |" in (run_dir / "report.md").read_text()
    write_report(run_dir)  # imported once, kept by later reports
    assert len(json.loads((run_dir / "report.json").read_text())["rows"]) == 2


def test_device_results_without_latency_are_refused(run_dir, tmp_path):
    results = tmp_path / "bad.json"
    results.write_text(json.dumps({"target": "x86-cpu"}))
    with pytest.raises(UserError, match="p50_ms"):
        write_report(run_dir, device_results=results)


def test_findings_left_by_stages_appear_in_markdown(run_dir):
    manifest = run_dir / "artifacts" / "x86-cpu" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["findings"] = [{"title": "Fallback", "text": "layer 3 kept in float",
                         "rows": [{"layer": 3, "snr_db": 4.2}]}]
    manifest.write_text(json.dumps(data))
    markdown = render_markdown(build_report(run_dir))
    assert "### Fallback" in markdown and "| 3 | 4.2 |" in markdown


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        build_report(tmp_path)


def test_report_shows_dashes_when_an_artifact_was_not_benchmarked(run_dir):
    (run_dir / "artifacts" / "x86-cpu" / "bench.json").unlink()
    markdown = render_markdown(build_report(run_dir))
    assert "| x86-cpu | onnx | fp32 | 90.00 | — | — |" in markdown


def test_stage_records_become_findings_with_accuracy_before_and_after(run_dir):
    stage = run_dir / "stages" / "prune" / "stage.json"
    stage.parent.mkdir(parents=True)
    stage.write_text(json.dumps({"stage": "prune", "metrics": {
        "accuracy": {"before": {"accuracy": 0.819, "ci95": [0.80, 0.84]},
                     "after": {"accuracy": 0.6765, "ci95": [0.66, 0.70], "agreement": 0.7055},
                     "drop": 0.1425},
        "speedup_gate": {"target": "x86-cpu", "verdict": "no-gain", "latency_ratio": 0.93,
                         "size_ratio": 1.0}}}))
    markdown = render_markdown(build_report(run_dir))
    assert "| 81.90% [80.0%, 84.0%] | 67.65% [66.0%, 70.0%] | 70.55% | 14.25 |" in markdown
    assert "verdict no-gain: latency ratio 0.93" in markdown
