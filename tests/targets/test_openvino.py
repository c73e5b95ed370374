"""The OpenVINO target (x86-openvino, IR .xml + .bin): fp32 and NNCF int8 exports pass the parity
gate and a too-strict gate refuses them leaving no file; the IR carries the inference precision
hint, which runner, manifest and bench report; the runner takes any batch and length; eval, bench,
`edgecompress export` and a recipe run go through it; without OpenVINO everything touching the
target fails in one line with exit 2 while `targets list` / `show` still work."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.errors import ParityError, UserError
from edgecompress.targets import export, load_profile, load_runner, torch_runner
from edgecompress.targets.quantize import QuantOptions
from tests.models import SENTENCES, batch
from tests.targets.conftest import needs_openvino

TARGET = "x86-openvino"
MISSING = f"target {TARGET} needs OpenVINO: pip install 'edgecompress[openvino]'"


@pytest.fixture(scope="module")
def int8(exported, tmp_path_factory):
    """(int8 ExportResult, fp32 ExportResult, LoadedModel): tiny_bert, NNCF int8 of the fp32 IR."""
    base, loaded, _ = exported(TARGET, "tiny_bert")
    options = QuantOptions(calibration=(batch(loaded),), method="mean-minmax")
    out = tmp_path_factory.mktemp("openvino-int8")
    return export(loaded.module, batch(loaded), load_profile(TARGET), out, quant=options,
                  base=base), base, loaded


@needs_openvino
def test_openvino_fp32_export_is_two_files_matching_torch_within_1e_4(exported):
    result, loaded, _ = exported(TARGET, "tiny_bert")
    weights = result.path.with_suffix(".bin")
    assert result.path.suffix == ".xml" and weights.is_file()
    assert result.size_bytes == result.path.stat().st_size + weights.stat().st_size
    assert result.scheme == "fp32" and result.max_abs_diff <= 1e-4 and result.agreement == 1.0
    assert result.runtime_options == {"inference_precision": "f32"}
    assert not list(result.path.parent.glob(".*partial*"))  # no temporaries left


@needs_openvino
def test_openvino_nncf_int8_passes_the_int8_gate_smaller_than_fp32_and_says_how(int8):
    result, base, _ = int8
    assert result.scheme == "nncf-int8" and result.gated_on == "agreement+rel_error"
    assert result.agreement >= result.min_agreement and result.rel_error <= result.max_rel_error
    assert result.size_bytes < 0.5 * base.size_bytes  # int8 weights
    facts = result.quantization
    assert facts["tool"] == "nncf.quantize (model_type=TRANSFORMER)"
    assert (facts["method"], facts["samples"], facts["inference_precision"]) == \
        ("mean-minmax", 4, "f32")
    weights = [r.path.with_suffix(".bin").read_bytes() for r in (result, base)]
    assert weights[0] != weights[1]


@needs_openvino
def test_openvino_runner_takes_any_batch_and_length_and_runs_the_ir_precision_hint(exported):
    result, loaded, _ = exported(TARGET, "tiny_bert")
    runner = load_runner(result.path, threads=1)
    assert runner.fixed_shape is None and runner.name == "openvino"
    assert runner.backend.options == {"inference_precision": "f32", "threads": 1}
    inputs = batch(loaded)
    for rows, seq in ((1, 3), (3, inputs["input_ids"].shape[1])):
        cut = {n: v[:rows, :seq] for n, v in inputs.items()}
        got, want = runner.run(**cut), torch_runner(loaded.module).run(**cut)
        assert got.shape == (rows, 2)
        np.testing.assert_allclose(got, want, atol=1e-4)


@needs_openvino
def test_openvino_export_is_refused_and_leaves_no_file_when_the_gate_is_too_strict(int8,
                                                                                   tmp_path):
    _, base, loaded = int8
    strict = dataclasses.replace(load_profile(TARGET),
                                 parity_overrides=(("nncf-int8", 1.0, 0.95, 1e-9),))
    options = QuantOptions(calibration=(batch(loaded),), method="mean-minmax")
    with pytest.raises(ParityError, match="relative error"):
        export(loaded.module, batch(loaded), strict, tmp_path, quant=options, base=base)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".edgecompress-output"] or \
        not any(p.suffix in (".xml", ".bin") for p in tmp_path.iterdir())


@needs_openvino
def test_openvino_int8_refuses_float_layers_in_one_line(exported, tmp_path):
    base, loaded, _ = exported(TARGET, "tiny_bert")
    options = QuantOptions(calibration=(batch(loaded),), method="mean-minmax",
                           float_scopes=("hf.bert.encoder.layer.0",))
    with pytest.raises(UserError, match="not available for openvino"):
        export(loaded.module, batch(loaded), load_profile(TARGET), tmp_path, quant=options,
               base=base)
    assert not any(p.suffix in (".xml", ".bin") for p in tmp_path.iterdir())


@needs_openvino
def test_quantize_refuses_max_drop_before_reading_data_when_target_is_openvino(tiny_bert_dir,
                                                                             tmp_path):
    from edgecompress.cli import app

    result = CliRunner().invoke(app, ["quantize", str(tiny_bert_dir), "--target", TARGET,
                                      "--dataset", "rt-polarity", "--max-drop", "1",
                                      "--out", str(tmp_path / "q")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: max_drop (the accuracy fallback) is not available for target {TARGET}: "
        f"openvino artifacts cannot keep layers in float"]


@needs_openvino
def test_eval_and_bench_run_the_ir_through_its_runner_at_real_lengths(int8):
    from edgecompress.compress.evaluation.evaluate import predict
    from edgecompress.targets import bench

    result, _, loaded = int8
    got = predict(load_runner(result.path), loaded.tokenizer, SENTENCES)
    want = predict(torch_runner(loaded.module), loaded.tokenizer, SENTENCES)
    assert np.mean(got.argmax(-1) == want.argmax(-1)) >= 0.75
    measured = bench(result.path, load_profile(TARGET), warmup=1, runs=3, seq_len=32,
                     lengths=[5, 9, 20])
    assert measured["runtime"] == "openvino" and measured["runtime_version"] == "2026.4.1"
    assert measured["runtime_options"] == {"inference_precision": "f32", "threads": 1}
    assert measured["runtime_threads"] == 1 and measured["real_shape"] == "unpadded"
    assert measured["size_bytes"] == result.size_bytes and 0 < measured["p50_real_ms"] < 1000
    assert measured["host"]["runtimes"]["openvino"] == "2026.4.1"


@needs_openvino
def test_cli_export_writes_an_nncf_int8_ir_with_the_hint_in_its_manifest(tiny_bert_dir,
                                                                          sentiment_csv, tmp_path):
    from edgecompress.cli import app

    out = tmp_path / "ov"  # calibrates on 300 training sentences, as the profile asks
    result = CliRunner().invoke(app, ["export", str(tiny_bert_dir), "--target", TARGET,
                                      "--dataset", "rt-polarity", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["format"], manifest["scheme"], manifest["artifact"]) == \
        ("openvino", "nncf-int8", "model.xml")
    assert manifest["runtime_options"] == {"inference_precision": "f32"}
    assert manifest["size_bytes"] == sum((out / f).stat().st_size
                                         for f in ("model.xml", "model.bin"))
    evaluated = CliRunner().invoke(app, ["eval", str(out / "model.xml"), "--dataset",
                                         str(sentiment_csv), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert 0.0 <= json.loads(evaluated.output)["accuracy"] <= 1.0


@needs_openvino
def test_recipe_run_exports_evaluates_and_benches_the_ir_when_targets_list_it(tiny_bert_dir,
                                                                             sentiment_csv,
                                                                             tmp_path):
    from rich.console import Console

    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import run_recipe
    from tests.conftest import write_recipe

    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                                      targets=(TARGET, "x86-cpu")))
    run_recipe(recipe, tmp_path / "run", Console(quiet=True))
    folder = tmp_path / "run" / "artifacts" / TARGET
    bench = json.loads((folder / "bench.json").read_text())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    row = next(r for r in report["rows"] if r["target"] == TARGET)
    assert (folder / "model.xml").is_file() and (folder / "model.bin").is_file()
    assert bench["runtime"] == "openvino" and bench["real_shape"] == "unpadded"
    assert bench["runtime_options"]["inference_precision"] == "f32"
    assert row["size_bytes"] == bench["size_bytes"] == sum(
        (folder / f).stat().st_size for f in ("model.xml", "model.bin"))
    assert json.loads((folder / "eval.json").read_text())["agreement"] == 1.0  # fp32 vs torch


def test_profile_refuses_an_inference_precision_outside_openvino_or_unknown(tmp_path):
    shipped = load_profile(TARGET)
    assert (shipped.format, shipped.suffix, shipped.scheme) == ("openvino", ".xml", "nncf-int8")
    with pytest.raises(ValueError, match="inference_precision: applies to openvino"):
        dataclasses.replace(load_profile("x86-cpu"), inference_precision="f32")
    with pytest.raises(ValueError, match="inference_precision: expected one of f32, bf16"):
        dataclasses.replace(shipped, inference_precision="int4")


# ---------------------------------------------------------------- without OpenVINO


@pytest.fixture
def no_openvino(monkeypatch):
    """OpenVINO and NNCF fail to import in this process, as in a default install."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("openvino", "nncf")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises
    monkeypatch.setitem(sys.modules, "nncf", None)


def test_export_refuses_in_one_line_naming_the_extra_when_openvino_is_missing(
        no_openvino, models, tmp_path):
    loaded = models["tiny_bert"]
    with pytest.raises(UserError) as caught:
        export(loaded.module, batch(loaded), load_profile(TARGET), tmp_path / "out",
               scheme="fp32")
    assert str(caught.value) == MISSING
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_export_exits_2_with_one_line_when_openvino_is_missing(no_openvino, tiny_bert_dir,
                                                                   tmp_path):
    from edgecompress.cli import app

    out = tmp_path / "ov"
    result = CliRunner().invoke(app, ["export", str(tiny_bert_dir), "--target", TARGET,
                                      "--scheme", "fp32", "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {MISSING}"]
    assert not out.exists() or not any(out.iterdir())


def test_load_runner_refuses_an_ir_in_one_line_when_openvino_is_missing(no_openvino, tmp_path):
    path = tmp_path / "model.xml"
    path.write_text("<net/>")
    path.with_suffix(".bin").write_bytes(b"\0" * 8)
    with pytest.raises(UserError, match=r"^artifact .*model\.xml needs OpenVINO: pip install "
                                        r"'edgecompress\[openvino\]'$"):
        load_runner(path)


def test_load_runner_names_the_missing_weights_when_an_ir_has_no_bin(tmp_path):
    path = tmp_path / "model.xml"
    path.write_text("<net/>")
    with pytest.raises(UserError, match=r"^artifact not found: .*model\.bin$"):
        load_runner(path)


def test_targets_show_says_how_to_enable_it_when_openvino_is_missing(no_openvino):
    from edgecompress.cli import app

    shown = CliRunner().invoke(app, ["targets", "show", TARGET, "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["needs"] == "OpenVINO: pip install 'edgecompress[openvino]'"


def test_run_identity_digest_of_an_ir_changes_when_only_its_weights_change(tmp_path):
    from edgecompress.compress.identity import content_digest

    graph = tmp_path / "model.xml"
    graph.write_text("<net/>")
    graph.with_suffix(".bin").write_bytes(b"\1" * 8)
    before = content_digest(graph)
    graph.with_suffix(".bin").write_bytes(b"\2" * 8)  # retrained weights, same graph
    assert content_digest(graph) != before
