import csv
import io
import json

import pytest

from edgecompress.errors import UserError
from edgecompress.reports import build_report, render_markdown, write_report
from edgecompress.reports.html import render_html
from edgecompress.reports.report import render_csv
from tests.reports.rundirs import HOST, VS_TEACHER, add_artifact, make_run, write_json


def test_report_rows_carry_the_measured_numbers_when_run_dir_is_complete(run_dir):
    report = build_report(run_dir)
    (row,) = report["rows"]
    assert row["p50_ms"] == 16.04 and row["p90_ms"] == 17.5 and row["p50_real_ms"] == 4.25
    assert row["size_bytes"] == 90_000_123  # bench measures the file; it wins over the manifest
    assert row["accuracy"] == 0.8215 and row["agreement"] == 0.9995
    assert row["parity_max_abs_diff"] == 2e-6
    assert report["teacher"]["accuracy"] == 0.82
    assert "x86_64, 2 cpus" in report["latency_note"]


def test_markdown_states_latency_is_host_measured_and_lists_the_row(run_dir):
    markdown = render_markdown(build_report(run_dir))
    assert "measured on this host" in markdown
    assert "| x86-cpu | onnx | fp32 | 90.00 | 16.04 | 17.50 | 4.25 | 82.15% [80.4%, 83.8%] " \
        "| 99.95% |" in markdown
    assert "real lengths: 200 test sentences at their own token counts" in markdown


def test_write_report_writes_json_markdown_csv_and_html(run_dir):
    paths = write_report(run_dir)
    assert sorted(p.name for p in paths) == ["report-classes.csv", "report.csv", "report.html",
                                             "report.json", "report.md"]
    assert json.loads((run_dir / "report.json").read_text())["rows"][0]["target"] == "x86-cpu"
    (line,) = list(csv.DictReader((run_dir / "report.csv").open()))
    assert line["p50_ms"] == "16.04" and line["ci95_low"] == "0.804"
    assert line["p50_real_ms"] == "4.25"
    assert line["pareto_optimal"] == "True"


def test_report_names_a_target_the_parity_gate_refused_in_every_format(run_dir):
    reason = "artifacts/edgetpu/model.tflite failed parity: argmax agreement 89.0% < 90%"
    write_json(run_dir / "artifacts" / "edgetpu" / "refused.json",
               {"target": "edgetpu", "step": "export-edgetpu", "reason": reason, "diffs": {}})
    paths = write_report(run_dir)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["refused"] == [{"target": "edgetpu", "reason": reason}]
    assert [r["target"] for r in report["rows"]] == ["x86-cpu"]  # no row for what was not kept
    markdown = (run_dir / "report.md").read_text()
    assert "**edgetpu: refused by the parity gate** (" + reason in markdown
    assert "edgetpu: refused by the parity gate" in (run_dir / "report.html").read_text()
    assert len(paths) == 5


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


def test_report_row_shows_the_paired_delta_in_every_format_when_eval_has_vs_teacher(tmp_path):
    run = make_run(tmp_path / "run", vs_teacher=VS_TEACHER)
    write_report(run)
    shown = "\u22120.6 points [\u22121.4, +0.2], not significant"
    assert f"| 99.95% | {shown} |" in (run / "report.md").read_text()
    assert shown in (run / "report.html").read_text()
    (line,) = list(csv.DictReader((run / "report.csv").open()))
    assert (line["vs_teacher_delta"], line["vs_teacher_ci95_low"],
            line["vs_teacher_ci95_high"], line["vs_teacher_significant"]) == \
        ("-0.6", "-1.4", "0.2", "False")
    row = json.loads((run / "report.json").read_text())["rows"][0]
    assert row["vs_teacher"]["disagreements"] == 41


def test_report_marks_the_paired_delta_significant_when_its_interval_excludes_zero(tmp_path):
    paired = {**VS_TEACHER, "delta": -2.1, "delta_ci95": [-3.0, -1.2], "significant": True}
    markdown = render_markdown(build_report(make_run(tmp_path / "run", vs_teacher=paired)))
    assert "| \u22122.1 points [\u22123.0, \u22121.2], significant |" in markdown


def test_report_shows_a_dash_for_the_paired_delta_when_eval_has_none(run_dir):
    assert "| 99.95% | — | 2.0e-06 |" in render_markdown(build_report(run_dir))
    (line,) = list(csv.DictReader(io.StringIO(render_csv(build_report(run_dir)))))
    assert line["vs_teacher_delta"] == "" and line["vs_teacher_significant"] == ""


def test_stage_finding_lists_each_paired_delta_when_stage_metrics_hold_vs_teacher(run_dir):
    stage = run_dir / "stages" / "distill" / "stage.json"
    write_json(stage, {"stage": "distill", "metrics": {"test": {
        "teacher": {"accuracy": 0.82}, "student": {"accuracy": 0.80, "vs_teacher": {
            **VS_TEACHER, "delta": -2.0, "delta_ci95": [-2.9, -1.1], "p_value": 0.0001}}}}})
    report = build_report(run_dir)
    (finding,) = [f for f in report["findings"] if "paired" in f["title"]]
    assert finding["title"] == "distill: paired accuracy difference vs the fp32 teacher"
    (row,) = finding["rows"]
    assert row["measured"] == "test.student" and row["McNemar p"] == "0.0001"
    assert "\u22122.0 points [\u22122.9, \u22121.1], significant" in render_markdown(report)


def test_report_has_a_host_section_when_bench_json_records_the_host(tmp_path):
    run = make_run(tmp_path / "run", host=HOST)
    report = build_report(run)
    assert report["host"]["cpu_model"] == HOST["cpu_model"]
    assert report["host"]["isa"] == HOST["isa"] and report["host"]["threads"] == {"x86-cpu": 2}
    markdown = render_markdown(report)
    assert "## Host" in markdown
    for line in (f"- **CPU**: {HOST['cpu_model']}",
                 "- **int8-relevant ISA flags**: amx_int8, avx2, avx512_vnni",
                 "- **cores**: 16", "- **runtimes**: onnxruntime 1.32.0",
                 "- **threads**: x86-cpu 2"):
        assert line in markdown
    assert HOST["cpu_model"] in report["latency_note"]
    assert '<table id="host">' in render_html(report) and "avx512_vnni" in render_html(report)


def test_report_host_section_says_older_when_bench_host_is_a_plain_string(run_dir):
    report = build_report(run_dir)
    assert report["host"]["description"] == "x86_64, 2 cpus"
    assert report["host"]["cpu_model"] is None
    assert "- **recorded as**: x86_64, 2 cpus" in render_markdown(report)


def test_report_host_section_says_not_recorded_when_no_bench_has_a_host(tmp_path):
    report = build_report(make_run(tmp_path / "run", host=None))
    assert report["host"] is None
    assert "- **host**: not recorded in any bench.json" in render_markdown(report)
    assert "unrecorded host" in report["latency_note"]


def test_report_notes_different_hosts_when_artifacts_were_benchmarked_apart(tmp_path):
    run = make_run(tmp_path / "run", host=HOST)
    add_artifact(run, target="rpi5", fmt="tflite",
                 host={**HOST, "cpu_model": "Cortex-A76", "isa": ["asimd", "asimddp"]})
    report = build_report(run)
    (note,) = report["notes"]
    assert "different hosts" in note and "Cortex-A76" in note and "(rpi5)" in note
    assert f"- {note}" in render_markdown(report)
