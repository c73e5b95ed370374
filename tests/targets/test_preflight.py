from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgecompress.compress.quantize.integer import IntegerFriendlyClassifier
from edgecompress.errors import UserError
from edgecompress.targets import export, load_profile
from edgecompress.targets.preflight import preflight
from edgecompress.targets.quantize import QuantOptions
from tests.models import batch


@pytest.fixture(scope="module")
def edgetpu_artifacts(models, tmp_path_factory):
    """(clean, planted): tiny BERT full-integer for edgetpu, and the same with layer 1 in float."""
    loaded = models["tiny_bert"]
    module = IntegerFriendlyClassifier(loaded.module.hf).eval()
    out = tmp_path_factory.mktemp("edgetpu")
    profile = load_profile("edgetpu")
    base = export(module, batch(loaded), dataclasses.replace(profile, schemes=(), scheme="fp32"),
                  out, name="fp32")
    results = []
    for name, floats in (("clean", ()), ("planted", ("hf.bert.encoder.layer.1",))):
        options = QuantOptions(calibration=(batch(loaded),), module=module, float_scopes=floats)
        results.append(export(module, batch(loaded), profile, out, name=name, quant=options,
                              base=base))
    return results


def test_preflight_finds_no_float_op_when_edgetpu_artifact_is_full_integer(edgetpu_artifacts):
    clean, _ = edgetpu_artifacts
    report = preflight(clean.path)
    assert report.integer_only and report.float_count == 0 and report.ops_total > 50


def test_preflight_reports_float_ops_when_a_layer_is_planted_in_float(edgetpu_artifacts):
    _, planted = edgetpu_artifacts
    report = preflight(planted.path)
    ops = {entry["op"]: entry for entry in report.float_ops}
    assert not report.integer_only
    # layer 1's dense layers run in float, behind a DEQUANTIZE / QUANTIZE pair
    assert {"FULLY_CONNECTED", "DEQUANTIZE"} <= set(ops)
    assert ops["FULLY_CONNECTED"]["count"] == 6  # query, key, value, output, FFN in, FFN out


def test_preflight_lists_float_ops_when_onnx_artifact_is_fp32(exported):
    result, _, _ = exported("x86-cpu", "tiny_plain")
    report = preflight(result.path)
    ops = {entry["op"] for entry in report.float_ops}
    assert "MatMul" in ops and "LayerNormalization" in ops and report.format == "onnx"


def test_preflight_raises_user_error_when_artifact_is_missing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        preflight(tmp_path / "gone.tflite")


def test_integer_graph_check_says_it_did_not_look_when_the_model_does_not_trace():
    import torch

    from edgecompress.targets import load_profile
    from edgecompress.targets.preflight import check_integer_graph

    class Untraceable(torch.nn.Module):  # data-dependent control flow: torch.export refuses it
        def forward(self, input_ids, attention_mask):
            if int(input_ids.sum()) > 0:
                return input_ids.float()
            return attention_mask.float()

    sample = {"input_ids": np.ones((1, 8), np.int64), "attention_mask": np.ones((1, 8), np.int64)}
    unchecked = check_integer_graph(Untraceable(), sample, load_profile("edgetpu"))
    assert unchecked is not None and "torch.export could not trace" in unchecked
    assert check_integer_graph(Untraceable(), sample, load_profile("x86-cpu")) is None
