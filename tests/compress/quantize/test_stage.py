from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.models.encoder import EncoderClassifier, EncoderConfig
from edgecompress.compress.models.loading import LoadedModel
from edgecompress.compress.quantize.stage import QuantizeConfig, QuantizeRequest, run_quantize
from edgecompress.targets import torch_runner
from tests.models import save_tiny, tokenizer
from tests.targets.conftest import needs_executorch

runner = CliRunner()
WORDS = ["film", "plot", "acting", "score", "story", "cast", "script", "ending", "pace", "humor"]
MOODS = ["a wonderful", "a dull", "an odd", "a tedious", "a brilliant", "a warm", "a noisy"]


def _texts(n: int, seed: int) -> list[str]:
    """n varied sentences of 3 to ~20 words (so lengths differ)."""
    rng = np.random.default_rng(seed)
    return [f"{rng.choice(MOODS)} " + " ".join(rng.choice(WORDS, size=int(rng.integers(2, 19))))
            for _ in range(n)]


def sensitive_plain(seed: int = 0) -> LoadedModel:
    """A 3-layer plain encoder whose layer 1 cannot be quantized: its FFN hidden has one huge,
    always-positive channel (≈1e3) that the float model ignores (zero output weights), so an
    int8 scale fitted to it rounds every other channel of that activation to zero."""
    torch.manual_seed(seed)
    config = EncoderConfig.uniform(tokenizer().vocab_size, d_model=32, n_heads=4, ffn=64,
                                   n_layers=3, max_len=256)
    model = EncoderClassifier(config).eval()
    with torch.no_grad():
        layer = model.layers[1]
        layer.ffn_in.weight[0].mul_(100.0)
        layer.ffn_in.bias[0] = 1000.0
        layer.ffn_out.weight[:, 0] = 0.0
        layer.ffn_out.weight[:, 1:].mul_(4.0)  # an FFN whose output matters
        model.classifier.weight.mul_(20.0)
    return LoadedModel(model, tokenizer(), "plain", "classification", Path("."), ("0", "1"))


def _write_csv(path: Path, loaded: LoadedModel, train: list[str], dev: list[str]) -> Path:
    """Labels are the fp32 model's own predictions: fp32 dev accuracy is exactly 100 %."""
    logits = torch_runner(loaded.module).run(**_tokens(dev))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        writer.writerows([t, 0, "train"] for t in train)
        writer.writerows([t, int(y), "dev"] for t, y in zip(dev, logits.argmax(1)))
        writer.writerows([t, 0, "test"] for t in train[:2])
    return path


def _tokens(texts):
    encoded = tokenizer()(texts, padding="longest", return_tensors="np")
    return {k: encoded[k].astype(np.int64) for k in ("input_ids", "attention_mask")}


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory):
    root = tmp_path_factory.mktemp("sensitive")
    loaded = sensitive_plain()
    checkpoint = save_tiny(loaded, root / "model")
    data = _write_csv(root / "data.csv", loaded, _texts(32, 1), _texts(60, 2))
    return checkpoint, data, root


@pytest.fixture(scope="module")
def fallback_run(sensitive):
    """One quantize with fallback on the sensitive fixture; the tests below read its output."""
    checkpoint, data, root = sensitive
    config = QuantizeConfig(target="x86-cpu", calibration_samples=16, max_drop=5.0)
    manifest = run_quantize(QuantizeRequest(model=str(checkpoint), out=root / "q",
                                            config=config, data=DataRef(str(data))))
    return manifest, root / "q"


def test_fallback_moves_most_sensitive_layers_to_float_first_until_bound_met(fallback_run):
    # int8 kernels differ by CPU (VNNI or not), so how many layers it takes differs too; what
    # holds on any CPU: all-int8 misses the bound, layers go float in sensitivity order, and
    # the kept configuration meets the bound.
    manifest, out = fallback_run
    fallback = manifest["fallback"]
    ranked = [entry["layer"] for entry in fallback["sensitivity"]]
    assert ranked[0] == "layers.1"  # the fixture's sensitive layer ranks first
    assert fallback["steps"][0]["drop_points"] > 5.0
    floats = fallback["float_layers"]
    assert fallback["met"] and floats and floats == ranked[:len(floats)]
    assert manifest["quantization"]["float_scopes"] == floats
    assert [c["layer"] for c in fallback["layer_costs"]] == floats
    assert {"latency_ms", "size_bytes"} <= set(fallback["layer_costs"][0])
    saved = json.loads((out / "quantize.json").read_text())
    assert saved["fallback"]["float_layers"] == floats and saved["blame"]


def test_quantize_returns_the_cached_manifest_when_rerun_identically(fallback_run, sensitive):
    manifest, out = fallback_run
    checkpoint, data, _ = sensitive
    stamp = (out / "model.onnx").stat().st_mtime_ns
    config = QuantizeConfig(target="x86-cpu", calibration_samples=16, max_drop=5.0)
    again = run_quantize(QuantizeRequest(model=str(checkpoint), out=out, config=config,
                                         data=DataRef(str(data))))
    assert again["identity"] == manifest["identity"]
    assert (out / "model.onnx").stat().st_mtime_ns == stamp


def test_blame_ranks_every_layer_with_snr_when_quantized(fallback_run):
    _, out = fallback_run
    blame = json.loads((out / "quantize.json").read_text())["blame"]
    assert sorted(b["layer"] for b in blame) == ["layers.0", "layers.1", "layers.2"]
    assert all(np.isfinite(b["snr_db"]) and b["rel_mse"] >= 0 for b in blame)
    assert [b["rel_mse"] for b in blame] == sorted((b["rel_mse"] for b in blame), reverse=True)


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    return lines[0]


def test_quantize_exits_2_when_target_cannot_run_scheme(tiny_bert_dir, tmp_path):
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "edgetpu",
                                 "--scheme", "fp16", "--out", str(tmp_path / "o")])
    assert "edgetpu cannot run scheme 'fp16'" in _error_line(result)


def test_quantize_exits_2_when_calibration_set_is_smaller_than_asked(tiny_bert_dir,
                                                                     sentiment_csv, tmp_path):
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "npu-int8",
                                 "--dataset", str(sentiment_csv), "--calib-samples", "500",
                                 "--out", str(tmp_path / "o")])
    assert "smaller than asked" in _error_line(result)


def test_quantize_exits_2_when_max_drop_needs_labels_the_dataset_lacks(tiny_bert_dir, tmp_path):
    data = tmp_path / "unlabelled.csv"
    data.write_text("text\n" + "\n".join(_texts(30, 4)) + "\n")
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "x86-cpu",
                                 "--dataset", str(data), "--max-drop", "1.0",
                                 "--out", str(tmp_path / "o")])
    assert "needs a labelled dataset" in _error_line(result)


# integer-only targets: (target, scheme, artifact, parity tolerance). The ONNX ones used to keep
# GELU's Div / Erf and the mask lookup in float; preflight must now find no float op.
INTEGER_TARGETS = [("edgetpu", "static-int8", "model.tflite", 2.0),
                   ("npu-int8", "static-int8", "model.onnx", 2.0),
                   ("npu-a16w8", "static-a16w8", "model.onnx", 1.0)]


@pytest.mark.parametrize("target, scheme, artifact, tolerance", INTEGER_TARGETS)
def test_quantize_cli_writes_verified_integer_only_artifact_when_defaults_are_used(
        tiny_bert_dir, sentiment_csv, tmp_path, target, scheme, artifact, tolerance):
    out = tmp_path / target
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", target,
                                 "--dataset", str(sentiment_csv), "--calib-samples", "16",
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scheme"] == scheme and manifest["parity"]["tolerance"] == tolerance
    assert manifest["preflight"]["required"]
    assert manifest["preflight"]["integer_only"], manifest["preflight"]["float_ops"]
    assert manifest["calibration"]["n"] == 16 and len(manifest["calibration_indices"]) == 16
    assert (out / artifact).is_file() and (out / "tokenizer.json").is_file()


def test_quantize_cli_writes_a_signature_per_bucket_when_target_has_buckets(tiny_bert_dir,
                                                                           sentiment_csv,
                                                                           tmp_path):
    out = tmp_path / "phone"
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "arm64-phone",
                                 "--dataset", str(sentiment_csv), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scheme"] == "dynamic-int8" and manifest["buckets"] == [32, 64, 128]
    from edgecompress.targets import load_runner

    assert load_runner(out / "model.tflite").buckets == (32, 64, 128)


@needs_executorch
@pytest.mark.slow  # ~20 s; the .pte export and gate: tests/targets/test_pte.py
def test_quantize_cli_writes_verified_pte_when_target_is_android_xnnpack(tiny_bert_dir,
                                                                         sentiment_csv, tmp_path):
    out = tmp_path / "pte"
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "android-xnnpack",
                                 "--dataset", str(sentiment_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    parity = manifest["parity"]
    assert (manifest["format"], manifest["scheme"]) == ("pte", "dynamic-int8")
    assert parity["gated_on"] == "agreement+rel_error" and parity["sample_rows"] > 8
    assert parity["agreement"] >= 0.95 and parity["rel_error"] <= 0.25
    report = json.loads((out / "quantize.json").read_text())
    assert report["preflight"] is None and report["blame"] == []  # neither reads a .pte
    assert sorted(p.name for p in out.glob("*.pte")) == ["model.pte"]
    assert "android-xnnpack dynamic-int8: model.pte" in result.output


def test_quantize_exits_2_when_max_drop_asks_a_pte_target_for_the_fallback(tiny_bert_dir,
                                                                           sentiment_csv,
                                                                           tmp_path):
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "android-xnnpack",
                                 "--dataset", str(sentiment_csv), "--max-drop", "1.0",
                                 "--out", str(tmp_path / "o")])
    line = _error_line(result)
    assert "max_drop" in line and "android-xnnpack" in line
    assert not (tmp_path / "o").exists()


def test_report_shows_quantization_section_when_run_has_quantize_json(fallback_run, tmp_path):
    import shutil

    from edgecompress.reports.report import build_report, render_markdown

    manifest, out = fallback_run
    shutil.copytree(out, tmp_path / "artifacts" / "x86-cpu")
    report = build_report(tmp_path)
    (entry,) = report["quantization"]
    floats = manifest["fallback"]["float_layers"]
    assert entry["fallback"]["float_layers"] == floats
    markdown = render_markdown(report)
    assert "## Quantization: x86-cpu (dynamic-int8)" in markdown
    assert f"kept in float: `{floats[0]}`" in markdown and f"| {floats[0]} |" in markdown
