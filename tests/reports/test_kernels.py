"""The report's "on its own kernels" cell, read from artifacts/<target>/verify.json."""

import json

from edgecompress.reports.kernels import kernels_cell, read_kernels

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


def test_read_kernels_gives_none_when_the_record_is_missing_or_malformed(tmp_path):
    assert read_kernels(tmp_path) is None
    (tmp_path / "verify.json").write_text('{"profiles": [{"agreement": "high"}]}')
    assert read_kernels(tmp_path) is None and kernels_cell(None) == "—"
