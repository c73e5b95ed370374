"""The ExecuTorch target (android-xnnpack, .pte): fp32 and dynamic int8 exports pass the parity
gate and a too-strict gate refuses them; the runner takes one row of any length up to the bound;
eval and bench go through it; without ExecuTorch everything touching the target fails in one
line with exit 2 while `targets list` / `show` still work and say how to enable it."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.errors import ParityError, UserError
from edgecompress.targets import export, load_profile, load_runner, torch_runner
from tests.models import batch
from tests.targets.conftest import needs_executorch

TARGET = "android-xnnpack"
MISSING = f"target {TARGET} needs ExecuTorch: pip install 'edgecompress[executorch]'"


@pytest.fixture(scope="module")
def int8(models, tmp_path_factory):
    """(ExportResult, LoadedModel) of tiny_bert exported dynamic-int8 for android-xnnpack."""
    loaded = models["tiny_bert"]
    out = tmp_path_factory.mktemp("pte-int8")
    return export(loaded.module, batch(loaded), load_profile(TARGET), out, scheme="dynamic-int8"), \
        loaded


@needs_executorch
def test_pte_fp32_export_matches_torch_within_1e_4_when_lowered_to_xnnpack(exported):
    result, loaded, _ = exported(TARGET, "tiny_bert")
    assert (result.format, result.scheme, result.path.suffix) == ("pte", "fp32", ".pte")
    assert result.max_abs_diff <= 1e-4 and result.agreement == 1.0
    assert result.gated_on == "max_abs_diff+agreement" and result.quantization is None
    assert result.exporter.startswith("executorch") and result.input_shape == (1, None)


@needs_executorch
def test_pte_dynamic_int8_export_passes_the_int8_gate_and_says_how_it_was_made(int8):
    result, _ = int8
    assert result.scheme == "dynamic-int8" and result.gated_on == "agreement+rel_error"
    assert result.agreement >= 0.95 and result.rel_error <= 0.25  # the scheme's gate
    assert result.rel_error > 0  # really quantized: int8 does not reproduce fp32 exactly
    facts = result.quantization
    assert facts["per_channel"] and facts["activations"] == "dynamic int8"
    assert facts["tool"].startswith("XNNPACKQuantizer")


@needs_executorch
def test_pte_dynamic_int8_is_smaller_than_fp32_when_weights_are_int8(exported, int8):
    fp32, _, _ = exported(TARGET, "tiny_bert")
    # the tiny model is mostly its fp32 embedding (kept fp32): the layers alone shrink
    assert int8[0].size_bytes < fp32.size_bytes


@needs_executorch
@pytest.mark.parametrize("gate", [pytest.param(("fp32", (1e-12, 1.0, None)),
                                               marks=pytest.mark.slow),  # int8: same path
                                  ("dynamic-int8", (1.0, 1.0, 1e-9))])
def test_pte_export_is_refused_and_leaves_no_file_when_the_gate_is_too_strict(models, tmp_path,
                                                                             gate):
    scheme, (tolerance, agreement, rel) = gate
    profile = load_profile(TARGET)
    if scheme == "fp32":  # fp32 measured ~1e-8 off torch: a 1e-12 bound cannot be met
        strict = dataclasses.replace(profile, tolerance=tolerance)
    else:  # int8 measured rel error ~0.01: a 1e-9 bound cannot be met
        strict = dataclasses.replace(profile, parity_overrides=((scheme, tolerance, agreement,
                                                                 rel),))
    loaded = models["tiny_bert"]
    with pytest.raises(ParityError) as caught:
        export(loaded.module, batch(loaded), strict, tmp_path, scheme=scheme)
    assert "failed parity" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # the partial artifact is gone too


@needs_executorch
def test_pte_runner_takes_one_row_of_any_length_up_to_128_and_matches_torch(exported):
    result, loaded, _ = exported(TARGET, "tiny_bert")
    runner = load_runner(result.path, threads=2)
    assert runner.name == "executorch" and runner.fixed_shape is None
    assert runner.bounded_shape == (1, 128) and runner.backend.threads == 2
    expected = torch_runner(loaded.module)
    for seq in (128, 17, 5):  # padded to 128, then real lengths: no padding needed
        inputs = batch(loaded, seq)
        np.testing.assert_allclose(runner.run(**inputs), expected.run(**inputs), atol=1e-4)
    with pytest.raises(UserError, match="at most 128 tokens, got 129"):
        runner.run(np.ones((1, 129), np.int64), np.ones((1, 129), np.int64))


@needs_executorch
def test_eval_and_bench_run_the_pte_through_its_runner(exported, tmp_path):
    from edgecompress.compress.evaluation.evaluate import predict
    from edgecompress.targets import bench
    from tests.models import SENTENCES

    result, loaded, _ = exported(TARGET, "tiny_bert")
    expected = torch_runner(loaded.module)
    got = predict(load_runner(result.path), loaded.tokenizer, SENTENCES)
    want = predict(expected, loaded.tokenizer, SENTENCES)
    np.testing.assert_allclose(got, want, atol=1e-4)
    measured = bench(result.path, load_profile(TARGET), warmup=1, runs=3, seq_len=32)
    assert measured["runtime"] == "executorch" and measured["runtime_version"] == "1.5.1"
    assert (measured["batch"], measured["seq_len"]) == (1, 32)  # bounded: timed as asked
    assert measured["runtime_threads"] == 4 and 0 < measured["p50_ms"] < 1000
    assert measured["host"]["runtimes"]["executorch"] == "1.5.1"


# ---------------------------------------------------------------- without ExecuTorch


@pytest.fixture
def no_executorch(monkeypatch):
    """ExecuTorch fails to import in this process, as in a default install."""
    for name in [m for m in sys.modules if m == "executorch" or m.startswith("executorch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "executorch", None)  # `import executorch...` raises


def test_export_refuses_in_one_line_naming_the_extra_when_executorch_is_missing(
        no_executorch, models, tmp_path):
    loaded = models["tiny_bert"]
    with pytest.raises(UserError) as caught:
        export(loaded.module, batch(loaded), load_profile(TARGET), tmp_path / "out")
    assert str(caught.value) == MISSING
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_export_exits_2_with_one_line_when_executorch_is_missing(no_executorch,
                                                                     tiny_bert_dir, tmp_path):
    from edgecompress.cli import app

    out = tmp_path / "pte"
    result = CliRunner().invoke(app, ["export", str(tiny_bert_dir), "--target", TARGET,
                                      "--scheme", "fp32", "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {MISSING}"]
    assert not out.exists() or not any(out.iterdir())


def test_load_runner_refuses_a_pte_in_one_line_when_executorch_is_missing(no_executorch,
                                                                          tmp_path):
    path = tmp_path / "model.pte"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(UserError, match=r"^artifact .*model\.pte needs ExecuTorch: pip install "
                                        r"'edgecompress\[executorch\]'$"):
        load_runner(path)


def test_targets_list_and_show_work_and_say_how_to_enable_it_when_executorch_is_missing(
        no_executorch):
    from edgecompress.cli import app

    listed = CliRunner().invoke(app, ["targets", "list"])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if TARGET in line)
    assert "pip install 'edgecompress[executorch]'" in row
    shown = CliRunner().invoke(app, ["targets", "show", TARGET, "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["needs"] == \
        "ExecuTorch: pip install 'edgecompress[executorch]'"
    other = CliRunner().invoke(app, ["targets", "show", "x86-cpu", "--json"])
    assert json.loads(other.output)["needs"] is None
