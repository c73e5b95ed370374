import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.errors import UserError
from edgecompress.reports.compare import Thresholds, compare_reports, load_report, paired_change
from tests.reports.rundirs import HOST, make_run

TEACHER = {"accuracy": 0.82, "n": 2000}


def _report(accuracy=0.82, p50=10.0, targets=("x86-cpu",), host=HOST, vs_teacher=None,
            teacher=TEACHER):
    rows = [{"target": t, "format": "onnx", "scheme": "fp32", "accuracy": accuracy,
             "p50_ms": p50, "size_bytes": 100, "vs_teacher": vs_teacher} for t in targets]
    return {"rows": rows, "host": host, "teacher": teacher}


def _paired(delta, low, high, n=2000):
    return {"delta": delta, "delta_ci95": [low, high], "n": n}


def test_compare_finds_no_regression_within_thresholds():
    diffs, regressions, warnings = compare_reports(_report(), _report(0.815, 10.5),
                                                   Thresholds(1.0, 0.10))
    assert regressions == [] and warnings == []
    assert diffs[0]["accuracy_points"] == pytest.approx(-0.5)
    assert diffs[0]["accuracy_gate"] == "plain"


def test_compare_flags_an_accuracy_drop_beyond_the_threshold():
    _, regressions, _ = compare_reports(_report(), _report(accuracy=0.80), Thresholds(1.0, 0.10))
    assert len(regressions) == 1 and "accuracy -2.00 points" in regressions[0]


def test_compare_flags_a_latency_increase_and_a_missing_artifact():
    old = _report(targets=("x86-cpu", "rpi5"))
    _, regressions, _ = compare_reports(old, _report(p50=12.0), Thresholds(1.0, 0.10))
    assert any("p50 latency +20.0%" in r for r in regressions)
    assert any("rpi5" in r and "missing" in r for r in regressions)


def test_thresholds_refuse_negative_values():
    with pytest.raises(UserError):
        Thresholds(-1.0, 0.1)


def test_compare_warns_when_cpu_models_differ():
    other = {**HOST, "cpu_model": "AMD EPYC 9654"}
    _, regressions, warnings = compare_reports(_report(), _report(host=other), Thresholds())
    assert regressions == []
    assert len(warnings) == 1 and "different hosts" in warnings[0] and "EPYC" in warnings[0]


def test_compare_warns_when_isa_flags_differ_on_the_same_cpu_model():
    other = {**HOST, "isa": ["avx2"]}
    _, _, warnings = compare_reports(_report(), _report(host=other), Thresholds())
    assert any("different hosts" in w for w in warnings)


def test_compare_does_not_warn_when_hosts_match_up_to_isa_order_and_threads():
    same = {**HOST, "isa": list(reversed(HOST["isa"])), "threads": 8}
    _, _, warnings = compare_reports(_report(), _report(host=same), Thresholds())
    assert warnings == []


def test_compare_warns_when_a_report_records_no_host():
    _, _, warnings = compare_reports(_report(host="x86_64, 2 cpus"), _report(host=None),
                                     Thresholds())
    assert warnings == ["OLD and NEW record no CPU model / ISA flags: cannot tell whether the "
                        "latencies come from the same host"]


def test_paired_change_combines_both_intervals_when_both_rows_have_one():
    old, new = {"vs_teacher": _paired(0.0, -1.0, 1.0)}, {"vs_teacher": _paired(-2.0, -3.0, -1.2)}
    change, low, high = paired_change(old, new)
    # square-and-add: low = -2 - hypot(1.0, 1.0), high = -2 + hypot(0.8, 1.0)
    assert change == pytest.approx(-2.0)
    assert (low, high) == pytest.approx((-2 - 2 ** 0.5, -2 + (0.64 + 1) ** 0.5))


def test_paired_change_is_none_when_the_rows_were_scored_on_different_n():
    old = {"vs_teacher": _paired(0.0, -1.0, 1.0, n=2000)}
    new = {"vs_teacher": _paired(-2.0, -3.0, -1.0, n=500)}
    assert paired_change(old, new) is None


def test_compare_counts_a_paired_drop_when_it_exceeds_the_limit_and_excludes_zero():
    old = _report(0.82, vs_teacher=_paired(0.0, -0.3, 0.3))
    new = _report(0.80, vs_teacher=_paired(-2.0, -2.6, -1.4))
    diffs, regressions, _ = compare_reports(old, new, Thresholds(1.0, 0.10))
    assert diffs[0]["accuracy_gate"] == "paired"
    assert diffs[0]["accuracy_points_ci95"][1] < 0
    assert len(regressions) == 1 and "paired interval excludes 0" in regressions[0]


def test_compare_only_warns_when_a_paired_drop_exceeds_the_limit_but_holds_zero():
    old = _report(0.82, vs_teacher=_paired(0.0, -1.5, 1.5))
    new = _report(0.805, vs_teacher=_paired(-1.5, -3.5, 0.5))
    _, regressions, warnings = compare_reports(old, new, Thresholds(1.0, 0.10))
    assert regressions == []
    assert len(warnings) == 1 and "holds 0" in warnings[0]


def test_compare_ignores_a_significant_paired_drop_when_it_is_within_the_limit():
    old = _report(0.82, vs_teacher=_paired(0.0, -0.1, 0.1))
    new = _report(0.815, vs_teacher=_paired(-0.5, -0.6, -0.4))
    _, regressions, warnings = compare_reports(old, new, Thresholds(1.0, 0.10))
    assert regressions == [] and warnings == []


def test_compare_falls_back_to_the_plain_drop_when_the_teachers_differ():
    old = _report(0.82, vs_teacher=_paired(0.0, -1.5, 1.5))
    new = _report(0.805, vs_teacher=_paired(-1.5, -3.5, 0.5),
                  teacher={"accuracy": 0.83, "n": 2000})
    diffs, regressions, warnings = compare_reports(old, new, Thresholds(1.0, 0.10))
    assert diffs[0]["accuracy_gate"] == "plain"
    assert len(regressions) == 1 and "accuracy -1.50 points" in regressions[0]
    assert any("different teachers" in w for w in warnings)


def test_cli_compare_exits_1_on_a_planted_regression_and_0_otherwise(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report()))
    new.write_text(json.dumps(_report(accuracy=0.75, host={**HOST, "cpu_model": "Cortex-A76"})))
    runner = CliRunner()
    assert runner.invoke(app, ["report", "compare", str(old), str(old)]).exit_code == 0
    result = runner.invoke(app, ["report", "compare", str(old), str(new), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["regressions"] and "Cortex-A76" in data["warnings"][0]
    assert result.stderr == ""  # exit 1 is the verdict, not an error


def test_cli_compare_prints_a_warning_line_when_hosts_differ(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report()))
    new.write_text(json.dumps(_report(host={**HOST, "cpu_model": "Cortex-A76"})))
    result = CliRunner().invoke(app, ["report", "compare", str(old), str(new)])
    assert result.exit_code == 0
    assert any(line.startswith("warning: OLD and NEW were benchmarked on different hosts")
               for line in result.output.splitlines())


def test_cli_compare_help_documents_the_paired_gate():
    result = CliRunner().invoke(app, ["report", "compare", "--help"])
    assert "interval excludes 0" in " ".join(result.output.split())


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]",
                                     b'{"rows": "x"}'])
def test_cli_compare_exits_2_with_one_line_when_report_json_is_corrupt(tmp_path, content):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_report()))
    bad.write_bytes(content)
    result = CliRunner().invoke(app, ["report", "compare", str(good), str(bad)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "bad.json" in line


def test_cli_compare_exits_2_with_one_line_when_a_path_is_missing(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_report()))
    result = CliRunner().invoke(app, ["report", "compare", str(good), str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: report not found: {tmp_path / 'nope'}"]


def test_load_report_refuses_a_run_directory_whose_report_json_is_not_utf8(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "report.json").write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8"):
        load_report(run)


def test_load_report_builds_the_report_when_a_run_directory_has_none(tmp_path):
    run = make_run(tmp_path / "run", host=HOST)
    report = load_report(run)
    assert report["rows"][0]["target"] == "x86-cpu" and report["host"]["cores"] == 16
    assert not (run / "report.json").exists()
