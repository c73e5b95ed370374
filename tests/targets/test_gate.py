"""The parity gate's agreement rule: judged on its 95 % Wilson interval (profiles.AGREEMENT_RULE)
where less than full agreement is asked, exact where full agreement is; refused.json and the
manifest carry the interval; the profile's gate sample size (`[parity] rows`) is validated."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.errors import ParityError, UserError
from edgecompress.targets import load_profile
from edgecompress.targets.profiles import PROFILE_DIR

export_impl = __import__("edgecompress.targets.export", fromlist=["_compare"])


class _Fixed:
    """A runner returning fixed logits, whatever it is fed."""

    def __init__(self, outputs: np.ndarray):
        self.outputs = outputs

    def run(self, **_inputs) -> np.ndarray:
        return self.outputs


def _logits(rows: int, agreeing: int) -> tuple[np.ndarray, np.ndarray]:
    """(artifact, torch) (rows, 2) logits whose argmax agrees on the first `agreeing` rows."""
    reference = np.tile(np.array([[2.0, -2.0]]), (rows, 1))
    outputs = reference.copy()
    outputs[agreeing:] = [[-0.1, 0.1]]  # flipped argmax, small: the relative error stays low
    return outputs.astype(np.float32), reference


def _compare(monkeypatch, rows: int, agreeing: int, scheme: str = "static-int8"):
    outputs, reference = _logits(rows, agreeing)
    monkeypatch.setattr(export_impl, "load_runner", lambda *_a, **_k: _Fixed(outputs))
    sample = {"input_ids": np.zeros((rows, 4), np.int64),
              "attention_mask": np.ones((rows, 4), np.int64)}
    loose = (("static-int8", 2.0, 0.90, 10.0),)  # a loose relative error: agreement decides
    profile = dataclasses.replace(load_profile("edgetpu"), schemes=("fp32", "static-int8"),
                                  parity_overrides=loose)
    return export_impl._compare(Path("m.tflite"), reference, [(None, sample)], profile,
                                reported=Path("m.tflite"), scheme=scheme)


def test_gate_passes_with_its_interval_when_agreement_is_below_the_bound_but_not_significantly(
        monkeypatch):
    measured = _compare(monkeypatch, 1008, 897)  # 89.0 %, the demo's point estimate
    low, high = measured.agreement_ci95
    assert measured.agreement < 0.90 and low < measured.agreement < high
    assert high >= 0.90 and measured.rows == 1008
    assert round(low, 3) == 0.869 and round(high, 3) == 0.908


def test_gate_refuses_naming_the_interval_when_its_upper_bound_is_below_the_bound(monkeypatch):
    with pytest.raises(ParityError) as info:
        _compare(monkeypatch, 1008, 857)  # 85.0 %: [82.7, 87.1]
    facts = info.value.facts
    assert facts["rows"] == 1008 and facts["min_agreement"] == 0.90
    assert facts["agreement_ci95"][1] < 0.90 and "Wilson" in facts["rule"]
    message = str(info.value)
    assert "95 % CI 82.7%, 87.1%" in message and "on 1008 rows" in message
    # the report keeps what follows the last ': ' as the short reason: the whole verdict
    assert message.rsplit(": ", 1)[-1].startswith("argmax agreement 85.0%")


def test_gate_refuses_on_1008_rows_what_136_rows_cannot_tell_when_agreement_is_87_5_percent(
        monkeypatch):
    assert _compare(monkeypatch, 136, 119).agreement_ci95[1] >= 0.90  # 87.5 %: [80.9, 92.1]
    with pytest.raises(ParityError):  # 87.5 %: [85.3, 89.4]
        _compare(monkeypatch, 1008, 882)


def test_gate_stays_exact_when_full_agreement_is_asked(monkeypatch):
    with pytest.raises(ParityError) as info:  # fp32: min_agreement 1.0, one row off of 136
        _compare(monkeypatch, 136, 135, scheme="fp32")
    assert "agreement_ci95" not in info.value.facts
    assert "argmax agreement 99.3% < 100%" in str(info.value)


def test_refused_json_carries_the_gate_interval_when_a_run_refuses_a_target(monkeypatch,
                                                                           tmp_path):
    from rich.console import Console

    from edgecompress.compress.pipeline.runs import _refuse_target

    with pytest.raises(ParityError) as info:
        _compare(monkeypatch, 1008, 857)
    step = SimpleNamespace(target="edgetpu", id="export-edgetpu")
    _refuse_target(step, info.value, tmp_path, Console(quiet=True))
    record = json.loads((tmp_path / "artifacts" / "edgetpu" / "refused.json").read_text())
    assert record["gate"]["agreement_ci95"] == pytest.approx([0.8268, 0.8709], abs=1e-4)
    assert record["gate"]["rows"] == 1008 and "95 % CI" in record["reason"]


def test_manifest_parity_words_name_the_interval_when_the_gate_used_one():
    from edgecompress.compress.evaluation.artifacts import parity_words

    words = parity_words({"agreement": 0.89, "agreement_ci95": [0.869, 0.908],
                          "sample_rows": 1008, "min_agreement": 0.9})
    assert words.startswith("argmax agreement 89.0% [95 % CI 86.9%, 90.8%] on 1008 rows")


EDGETPU = (PROFILE_DIR / "edgetpu.toml").read_text()


def test_edgetpu_gate_measures_agreement_on_the_whole_dev_split_when_loaded():
    assert load_profile("edgetpu").gate_rows == 1000
    assert load_profile("x86-cpu").gate_rows == 128  # the default


@pytest.mark.parametrize("value, words", [("0", "positive integer"), ('"all"', "integer")])
def test_load_profile_raises_user_error_naming_parity_rows_when_it_is_bad(value, words,
                                                                          tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(EDGETPU.replace("rows = 1000", f"rows = {value}"))
    with pytest.raises(UserError) as info:
        load_profile(path)
    assert "parity.rows" in str(info.value) and words in str(info.value)


def test_export_exits_2_in_one_line_when_parity_rows_is_bad(tiny_bert_dir, tmp_path):
    from edgecompress.cli import app

    path = tmp_path / "bad.toml"
    path.write_text(EDGETPU.replace("rows = 1000", "rows = -5"))
    result = CliRunner().invoke(app, ["export", str(tiny_bert_dir), "--target", str(path),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "parity.rows" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
