import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.errors import UserError
from edgecompress.reports.compare import Thresholds, compare_reports


def _report(accuracy=0.82, p50=10.0, targets=("x86-cpu",)):
    return {"rows": [{"target": t, "format": "onnx", "scheme": "fp32", "accuracy": accuracy,
                      "p50_ms": p50, "size_bytes": 100} for t in targets]}


def test_compare_finds_no_regression_within_thresholds():
    diffs, regressions = compare_reports(_report(), _report(0.815, 10.5), Thresholds(1.0, 0.10))
    assert regressions == []
    assert diffs[0]["accuracy_points"] == pytest.approx(-0.5)


def test_compare_flags_an_accuracy_drop_beyond_the_threshold():
    _, regressions = compare_reports(_report(), _report(accuracy=0.80), Thresholds(1.0, 0.10))
    assert len(regressions) == 1 and "accuracy -2.00 points" in regressions[0]


def test_compare_flags_a_latency_increase_and_a_missing_artifact():
    old = _report(targets=("x86-cpu", "rpi5"))
    _, regressions = compare_reports(old, _report(p50=12.0), Thresholds(1.0, 0.10))
    assert any("p50 latency +20.0%" in r for r in regressions)
    assert any("rpi5" in r and "missing" in r for r in regressions)


def test_thresholds_refuse_negative_values():
    with pytest.raises(UserError):
        Thresholds(-1.0, 0.1)


def test_cli_compare_exits_1_on_a_planted_regression_and_0_otherwise(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report()))
    new.write_text(json.dumps(_report(accuracy=0.75)))
    runner = CliRunner()
    assert runner.invoke(app, ["report", "compare", str(old), str(old)]).exit_code == 0
    result = runner.invoke(app, ["report", "compare", str(old), str(new), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["regressions"]
