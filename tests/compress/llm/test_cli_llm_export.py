"""`edgecompress llm export` / `llm bench` through typer's CliRunner: preflight refusals in one
line (exit 2, nothing written), a failed gate keeps nothing (exit 1), a passing export is
benchmarked from disk."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from tests.compress.llm.export_helpers import write_profile, write_text_csv
from tests.compress.llm.test_cli_llm import _one_line_error
from tests.compress.llm.tiny import TEXTS
from tests.targets.llm.tiny_genai import needs_genai, tiny_llama_dir

runner = CliRunner()


@pytest.fixture(scope="module")
def test_csv(tmp_path_factory):
    return write_text_csv(tmp_path_factory.mktemp("text"))


def _profile(tmp_path, scheme="fp32", kl_max=0.01, top1_min=0.99):
    return write_profile(tmp_path, name="tiny-llm", format="onnx-genai",
                         runtime="onnxruntime-genai", scheme=scheme, kl_max=kl_max,
                         top1_min=top1_min)


def test_llm_export_refuses_an_encoder_target_in_one_line_when_named(tmp_path, tiny_dirs):
    result = runner.invoke(app, ["llm", "export", str(tiny_dirs["llama"]), "--target", "x86-cpu",
                                 "--out", str(tmp_path / "out")])
    assert "x86-cpu is not a language-model target" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_names_the_target_before_converting_when_it_cannot_take_gpt2(
        tmp_path, tiny_dirs, test_csv):
    result = runner.invoke(app, ["llm", "export", str(tiny_dirs["gpt2"]), "--out",
                                 str(tmp_path / "out"), "--dataset", str(test_csv)])
    assert "target x86-cpu-llm cannot take GPT2LMHeadModel" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_refuses_a_prompt_in_one_line_when_longer_than_the_context(tmp_path,
                                                                               test_csv):
    result = runner.invoke(app, ["llm", "export", str(tiny_llama_dir()), "--target",
                                 _profile(tmp_path), "--out", str(tmp_path / "out"),
                                 "--dataset", str(test_csv), "--prompt", " ".join(TEXTS)])
    assert "exceeds the model's context of 256" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_bench_refuses_a_missing_artifact_in_one_line(tmp_path):
    result = runner.invoke(app, ["llm", "bench", str(tmp_path / "missing")])
    assert "LLM artifact not found" in _one_line_error(result)


@needs_genai
def test_llm_export_keeps_nothing_when_the_gate_fails(tmp_path, test_csv):
    result = runner.invoke(app, ["llm", "export", str(tiny_llama_dir()), "--target",
                                 _profile(tmp_path, "int4-rtn", 1e-6, 1.0), "--out",
                                 str(tmp_path / "out"), "--dataset", str(test_csv)])
    assert result.exit_code == 1 and "parity check failed" in result.output, result.output
    assert "mean KL" in result.output and not (tmp_path / "out").exists()


@needs_genai
def test_llm_export_writes_a_gated_artifact_that_bench_times_when_the_gate_passes(tmp_path,
                                                                                  test_csv):
    out = tmp_path / "out"
    result = runner.invoke(app, ["llm", "export", str(tiny_llama_dir()), "--target",
                                 _profile(tmp_path), "--out", str(out), "--dataset",
                                 str(test_csv), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "llm_export.json").read_text())
    assert record["gate"]["passed"] and record["gate"]["top1_agreement"] == 1.0
    assert record["builder"]["precision"] == "fp32" and record["target"]["name"] == "tiny-llm"
    assert [row["same_prefix"] for row in record["gate"]["greedy"]] == [4, 4, 4]
    result = runner.invoke(app, ["llm", "bench", str(out), "--repeats", "1", "--prompt-lengths",
                                 "8,16", "--new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [row["threads"] for row in rows] == [1] and set(rows[0]["ttft_ms"]) == {"8", "16"}
