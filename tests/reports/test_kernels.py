"""The report's "on its own kernels" cell, read from artifacts/<target>/verify.json."""

import csv
import io
import json

import pytest

from edgecompress.errors import UserError
from edgecompress.reports import write_report
from edgecompress.reports.kernels import kernels_cell, read_kernels
from tests.reports.rundirs import add_artifact, make_run

RECORD = {"kind": "verify", "target": "arm64-phone", "rows": 200, "passed": True,
          "profiles": [{"cpu": "cortex-a76", "agreement": 1.0, "accuracy": {"accuracy": 0.812}},
                       {"cpu": "armv9-i8mm", "agreement": 0.995,
                        "accuracy": {"accuracy": 0.81}}]}


def test_kernels_cell_names_each_profile_and_the_lowest_accuracy_when_verified(tmp_path):
    (tmp_path / "verify.json").write_text(json.dumps(RECORD))
    cell = kernels_cell(read_kernels(tmp_path))
    assert cell == ("arm64 cortex-a76 100.0% / armv9-i8mm 99.5% agree, acc 81.0%, 200 rows")


def test_kernels_cell_says_the_gate_failed_when_agreement_fell_below_it(tmp_path):
    (tmp_path / "verify.json").write_text(json.dumps({**RECORD, "passed": False}))
    assert kernels_cell(read_kernels(tmp_path)).endswith("FAILS the gate")


def test_read_kernels_gives_none_when_the_record_is_missing(tmp_path):
    assert read_kernels(tmp_path) is None and kernels_cell(None) == "—"


@pytest.mark.parametrize("content", ['{"profiles": [{"agreement": "high"}]}', "{}", "[]"])
def test_read_kernels_names_the_file_when_the_record_is_malformed(tmp_path, content):
    (tmp_path / "verify.json").write_text(content)
    with pytest.raises(UserError, match="verify.json"):
        read_kernels(tmp_path)


def test_kernels_cell_says_not_checked_with_the_reason_when_the_run_skipped_it(tmp_path):
    (tmp_path / "verify.json").write_text(json.dumps(
        {"kind": "verify", "target": "rpi5", "skipped": "qemu-aarch64 not found"}))
    assert kernels_cell(read_kernels(tmp_path)) == "not checked: qemu-aarch64 not found"


def test_every_report_format_carries_the_kernels_cell_when_an_artifact_was_verified(tmp_path):
    run = tmp_path / "run"
    make_run(run)
    phone = add_artifact(run, "arm64-phone", fmt="tflite")
    (phone / "verify.json").write_text(json.dumps(RECORD))
    skipped = add_artifact(run, "rpi5", fmt="tflite")
    (skipped / "verify.json").write_text(json.dumps({"skipped": "no qemu"}))
    write_report(run)
    cell = kernels_cell(RECORD)
    for name in ("report.md", "report.html", "report.csv"):
        text = (run / name).read_text()
        assert cell in text and "not checked: no qemu" in text, name
    html = (run / "report.html").read_text()
    assert '<th class="l">on its own kernels</th>' in html
    rows = {r["target"]: r for r in csv.DictReader(io.StringIO((run / "report.csv").read_text()))}
    assert rows["arm64-phone"]["on_its_own_kernels"] == cell
    assert rows["x86-cpu"]["on_its_own_kernels"] == ""  # not verified: an empty cell
