"""`report` on half-written or hand-edited runs: one line naming the file (exit 2) — never a
traceback, never a report with the problem in its notes, and nothing written when it refuses.
Notes are for legitimate partial runs: a step that has not run yet, a refused target."""

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.errors import UserError
from edgecompress.reports import build_report, render_markdown, write_report
from edgecompress.reports.html import render_html
from tests.reports.rundirs import add_artifact, files_in, write_json

NOT_JSON, NOT_UTF8 = b"{\"target\": ", b"\xff\xfe\x00{}"


def _cli_report(run, *extra):
    return CliRunner().invoke(app, ["report", str(run), *extra])


def _assert_refused(run, *extra, mentions):
    before = files_in(run)
    result = _cli_report(run, *extra)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and mentions in line
    assert files_in(run) == before
    return line


def test_report_notes_the_missing_run_json_when_it_is_absent(run_dir):
    (run_dir / "run.json").unlink()
    report = build_report(run_dir)
    assert report["rows"][0]["target"] == "x86-cpu"
    assert any("run.json is missing" in note for note in report["notes"])
    assert "## Notes" in render_markdown(report) and '<ul id="notes">' in render_html(report)


@pytest.mark.parametrize("content, mentions", [(NOT_JSON, "run.json is not valid JSON"),
                                               (NOT_UTF8, "run.json is not UTF-8"),
                                               (b"[]", "run.json: expected a JSON object"),
                                               (b"{}", "run.json is empty")])
def test_cli_report_exits_2_with_one_line_naming_run_json_when_it_is_unreadable(
        run_dir, content, mentions):
    (run_dir / "run.json").write_bytes(content)
    _assert_refused(run_dir, mentions=mentions)


def test_cli_report_exits_2_with_one_line_when_teacher_eval_is_not_utf8(run_dir):
    (run_dir / "teacher" / "eval.json").write_bytes(NOT_UTF8)
    _assert_refused(run_dir, mentions="teacher/eval.json is not UTF-8")


def test_cli_report_exits_2_when_teacher_accuracy_is_not_a_number(run_dir):
    write_json(run_dir / "teacher" / "eval.json", {"accuracy": "high", "n": 2000})
    _assert_refused(run_dir, mentions="'accuracy' should be a number")


def test_report_keeps_the_row_with_dashes_and_a_note_when_eval_json_is_not_there_yet(run_dir):
    (run_dir / "artifacts" / "x86-cpu" / "eval.json").unlink()
    report = build_report(run_dir)
    assert "| 16.04 | 17.50 | 4.25 | — | — | — |" in render_markdown(report)
    assert report["notes"] == ["x86-cpu: no eval.json (not evaluated yet); its cells show —"]


@pytest.mark.parametrize("content, mentions", [
    (b"{}", "eval.json lacks 'accuracy' and 'n': not a finished evaluation"),
    (b'{"accuracy": 0.82}', "eval.json lacks 'n'"),
    (b'{"accuracy": 82.0, "n": 2000}', "accuracy 82.0 on n = 2000 is not a measurement"),
    (b'{"accuracy": 0.8, "n": 0}', "is not a measurement"),
])
@pytest.mark.parametrize("where", ["teacher", "artifacts/x86-cpu"])
def test_cli_report_exits_2_naming_eval_json_when_it_is_half_written(run_dir, where, content,
                                                                       mentions):
    (run_dir / where / "eval.json").write_bytes(content)
    _assert_refused(run_dir, mentions=f"{where}/{mentions}" if mentions.startswith("eval")
                    else mentions)


def test_report_shows_accuracy_without_brackets_when_eval_and_teacher_lack_ci95(run_dir):
    write_json(run_dir / "artifacts" / "x86-cpu" / "eval.json", {"accuracy": 0.8215, "n": 2000})
    write_json(run_dir / "teacher" / "eval.json", {"accuracy": 0.82, "n": 2000})
    paths = write_report(run_dir)
    markdown = (run_dir / "report.md").read_text()
    assert "| 17.50 | 4.25 | 82.15% | — |" in markdown
    assert "accuracy 82.00% on n = 2000" in markdown
    assert "accuracy 82.00%, n = 2000" in (run_dir / "report.html").read_text()
    assert len(paths) == 5


def test_report_has_no_host_and_dashes_when_bench_json_is_missing(run_dir):
    (run_dir / "artifacts" / "x86-cpu" / "bench.json").unlink()
    report = build_report(run_dir)
    assert report["host"] is None and report["rows"][0]["p50_ms"] is None
    assert "<svg" not in render_html(report)  # nothing to plot, and no error


@pytest.mark.parametrize("name, content, mentions", [
    ("manifest.json", NOT_JSON, "manifest.json is not valid JSON"),
    ("manifest.json", NOT_UTF8, "manifest.json is not UTF-8"),
    ("manifest.json", b"[1]", "manifest.json: expected a JSON object, got list"),
    ("manifest.json", b"[]", "manifest.json: expected a JSON object, got list"),
    ("manifest.json", b"{}", "manifest.json is empty ({}): not an artifact manifest"),
    ("manifest.json", b'{"format": "onnx"}', "manifest.json lacks a 'target'"),
    ("eval.json", NOT_JSON, "eval.json is not valid JSON"),
    ("eval.json", b'{"accuracy": "0.8"}', "eval.json: 'accuracy' should be a number"),
    ("eval.json", b'{"accuracy": 0.8, "ci95": [0.9]}', "eval.json: 'ci95' should be"),
    ("eval.json", b'{"vs_teacher": {"delta": -1}}', "vs_teacher needs numeric 'delta'"),
    ("bench.json", NOT_UTF8, "bench.json is not UTF-8"),
    ("bench.json", b"{}", "bench.json lacks 'p50_ms'"),
    ("bench.json", b'{"p50_ms": 1.0, "host": {"isa": "avx2"}}', "'host.isa' should be a list"),
    ("verify.json", b"{}", "verify.json has neither 'skipped' nor"),
    ("quantize.json", NOT_JSON, "quantize.json is not valid JSON"),
    ("quantize.json", b"{}", "quantize.json is empty"),
])
def test_cli_report_exits_2_naming_the_file_when_one_file_of_an_artifact_is_bad(
        run_dir, name, content, mentions):
    add_artifact(run_dir, target="rpi5", fmt="tflite")
    (run_dir / "artifacts" / "x86-cpu" / name).write_bytes(content)
    line = _assert_refused(run_dir, mentions=mentions)
    assert f"artifacts/x86-cpu/{name}" in line


@pytest.mark.parametrize("content, mentions", [
    (NOT_JSON, "stages/prune/stage.json is not valid JSON"),
    (json.dumps({"stage": "prune", "metrics": {"accuracy": {"after": {"accuracy": "x"}}}}),
     "stages/prune/stage.json has an unexpected layout"),
])
def test_cli_report_exits_2_naming_a_stage_record_that_is_corrupt(run_dir, content, mentions):
    (run_dir / "stages" / "prune").mkdir(parents=True)
    path = run_dir / "stages" / "prune" / "stage.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    _assert_refused(run_dir, mentions=mentions)


@pytest.mark.parametrize("content, mentions", [
    (NOT_UTF8, "pixel8.json is not UTF-8"),
    (b'{"target": "x86-cpu"}', "pixel8.json lacks p50_ms"),
])
def test_cli_report_exits_2_naming_an_imported_device_result_that_is_corrupt(run_dir, content,
                                                                             mentions):
    (run_dir / "device-results").mkdir()
    (run_dir / "device-results" / "pixel8.json").write_bytes(content)
    _assert_refused(run_dir, mentions=mentions)


def test_cli_report_exits_2_naming_a_refusal_record_without_a_reason(run_dir):
    write_json(run_dir / "artifacts" / "edgetpu" / "refused.json", {})
    _assert_refused(run_dir, mentions="artifacts/edgetpu/refused.json lacks a 'reason'")


def test_cli_report_says_not_found_when_device_results_file_is_missing(run_dir, tmp_path):
    missing = tmp_path / "pixel8.json"
    _assert_refused(run_dir, "--device-results", str(missing),
                    mentions=f"device results not found: {missing}")


def test_cli_report_exits_2_when_device_results_are_not_json(run_dir, tmp_path):
    results = tmp_path / "pixel8.json"
    results.write_bytes(NOT_JSON)
    _assert_refused(run_dir, "--device-results", str(results), mentions="is not valid JSON")


def test_cli_report_exits_2_with_one_line_when_run_dir_is_missing(tmp_path):
    result = _cli_report(tmp_path / "nope")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: run directory not found: "
                                                  f"{tmp_path / 'nope'}"]


def test_build_report_refuses_a_directory_with_an_empty_teacher_and_no_artifacts(tmp_path):
    write_json(tmp_path / "teacher" / "eval.json", {})
    with pytest.raises(UserError, match="teacher/eval.json lacks 'accuracy'"):
        build_report(tmp_path)


@pytest.mark.parametrize("teacher", [True, False])
def test_cli_report_exits_2_when_the_run_has_no_row_and_no_refused_target(run_dir, teacher):
    import shutil

    shutil.rmtree(run_dir / "artifacts")
    if not teacher:
        shutil.rmtree(run_dir / "teacher")
    _assert_refused(run_dir, mentions="nothing to report: no artifacts/*/manifest.json and no "
                                      "refused target")


def test_report_of_a_run_whose_only_target_was_refused_is_written_with_the_note(run_dir):
    import shutil

    shutil.rmtree(run_dir / "artifacts")
    write_json(run_dir / "artifacts" / "edgetpu" / "refused.json",
               {"target": "edgetpu", "reason": "agreement 89.0% < 90%"})
    result = _cli_report(run_dir)
    assert result.exit_code == 0, result.output
    report = json.loads((run_dir / "report.json").read_text())
    assert report["rows"] == [] and report["refused"][0]["target"] == "edgetpu"
    assert any("edgetpu: refused by the parity gate" in note for note in report["notes"])
