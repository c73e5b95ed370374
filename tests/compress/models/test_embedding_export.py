"""A sentence encoder (mean-pooled embedding output) through the export parity gate: cosine to
torch, not argmax agreement, decides."""

from pathlib import Path

import pytest

from edgecompress.errors import ParityError
from edgecompress.targets import load_profile
from edgecompress.targets.export import Measured, _check_gate, export
from tests.models import batch, tiny_sentence_encoder
from tests.targets.conftest import needs_executorch


@pytest.mark.parametrize("target", ["x86-cpu", "arm64-phone",  # android-xnnpack: -m slow
                                    pytest.param("android-xnnpack",
                                                 marks=(needs_executorch, pytest.mark.slow))])
def test_sentence_encoder_exports_in_dynamic_int8_passing_cosine_gate_when_target_is(
        target, tmp_path):
    loaded = tiny_sentence_encoder()
    profile = load_profile(target)
    result = export(loaded.module, batch(loaded), profile, tmp_path, scheme="dynamic-int8")
    assert result.path.exists() and result.gated_on == "cosine+rel_error"
    assert result.min_cosine == profile.gate("dynamic-int8").min_cosine == 0.95
    assert result.min_cosine <= result.cosine <= 1.0 + 1e-9


def test_cosine_gate_raises_parity_error_when_rows_point_elsewhere():
    gate = load_profile("x86-cpu").gate("dynamic-int8")
    off = Measured(max_abs_diff=0.1, agreement=1.0, rel_error=0.01, scale=1.0, cosine=0.5)
    with pytest.raises(ParityError, match="cosine"):
        _check_gate(off, gate, Path("model.onnx"))


def test_cosine_gate_ignores_argmax_when_output_is_an_embedding():
    gate = load_profile("x86-cpu").gate("dynamic-int8")
    close = Measured(max_abs_diff=0.1, agreement=0.0, rel_error=0.01, scale=1.0, cosine=0.999)
    _check_gate(close, gate, Path("model.onnx"))  # argmax of an embedding means nothing
    logits = Measured(max_abs_diff=0.1, agreement=0.0, rel_error=0.01, scale=1.0)
    with pytest.raises(ParityError, match="agreement"):
        _check_gate(logits, gate, Path("model.onnx"))


def test_export_cli_writes_cosine_gated_manifest_when_model_is_sentence_encoder(
        tmp_path, sentiment_csv):
    import json

    from typer.testing import CliRunner

    from edgecompress.cli import app
    from tests.models import save_tiny

    model = save_tiny(tiny_sentence_encoder(), tmp_path / "model")
    out = tmp_path / "onnx"
    result = CliRunner().invoke(app, ["export", str(model), "--target", "x86-cpu", "--out",
                                      str(out), "--dataset", str(sentiment_csv)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "embedding" and manifest["parity"]["gated_on"] == "cosine+rel_error"
    assert manifest["parity"]["cosine"] >= manifest["parity"]["min_cosine"]


def test_parity_words_name_cosine_when_artifact_was_gated_on_it():
    from edgecompress.compress.evaluation.artifacts import parity_words

    assert parity_words({"cosine": 0.9736, "min_cosine": 0.95, "agreement": 0.75,
                         "min_agreement": 0.95}) == "min cosine 0.9736 (>= 0.95)"
    assert parity_words({"agreement": 1.0, "min_agreement": 0.95}) == \
        "argmax agreement 100% (>= 95%)"
