"""`edgecompress llm export --target <a tflite target>` / `llm eval` / `llm bench` on the tiny
Llama through litert-torch's generative API: the gate passes, the artifact reloads and decodes
the gate's greedy tokens, and a target that cannot take the model says so before converting."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.targets.llm.session import open_session
from tests.compress.llm.export_helpers import write_text_csv
from tests.compress.llm.test_cli_llm import _one_line_error
from tests.compress.llm.tiny import tokenizer
from tests.targets.llm.tiny_genai import tiny_llama_dir
from tests.targets.llm.tiny_litert import KV_CACHE, needs_litert, write_litert_profile

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the export folder, the CLI result, the text CSV): one conversion for the module."""
    folder = tmp_path_factory.mktemp("litert")
    text = write_text_csv(folder)
    out = folder / "out"
    result = runner.invoke(app, ["llm", "export", str(tiny_llama_dir()), "--target",
                                 write_litert_profile(folder), "--out", str(out), "--dataset",
                                 str(text), "--json"])
    return out, result, text


def test_llm_export_names_the_target_before_converting_when_it_cannot_take_qwen3(
        tmp_path, tiny_dirs):
    text = write_text_csv(tmp_path)
    result = runner.invoke(app, ["llm", "export", str(tiny_dirs["qwen3"]), "--target",
                                 "arm64-phone-llm", "--out", str(tmp_path / "out"), "--dataset",
                                 str(text)])
    assert "target arm64-phone-llm cannot take Qwen3ForCausalLM" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


@needs_litert
def test_llm_export_keeps_a_tflite_that_reloads_to_the_gates_greedy_tokens_when_it_passes(
        exported):
    out, result, _ = exported
    assert result.exit_code == 0, result.output
    record = json.loads((out / "llm_export.json").read_text())
    gate = record["gate"]
    assert gate["passed"] and gate["runtime"] == "tflite" and record["format"] == "tflite"
    assert record["builder"]["quantize"] == "dynamic_int8"
    assert record["builder"]["kv_cache_size"] == KV_CACHE
    artifact = out / record["artifact"]
    assert artifact.suffix == ".tflite" and artifact.is_file()
    session = open_session(artifact, threads=1)
    for row in gate["greedy"]:
        ids = tokenizer()(row["prompt"])["input_ids"]
        assert session.generate(ids, row["new_tokens"]).tokens == row["tokens"]
        assert session.logits(ids).shape == (len(ids), session.vocab)


@needs_litert
def test_llm_eval_scores_the_tflite_against_the_checkpoint_its_record_names(exported):
    out, result, text = exported
    assert result.exit_code == 0, result.output
    artifact = out / json.loads((out / "llm_export.json").read_text())["artifact"]
    result = runner.invoke(app, ["llm", "eval", str(artifact), "--dataset", str(text),
                                 "--context", "32", "--stride", "16", "--windows", "3",
                                 "--max-new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output[result.output.index("{"):])  # after the stderr note
    assert scores["runtime"] == "tflite" and scores["reference"] == str(tiny_llama_dir())
    assert 0 <= scores["kl"] < 0.5 and scores["top1_agreement"] >= 0.8
    assert len(scores["continuations"]) == 3


@needs_litert
def test_llm_bench_times_the_tflite_and_refuses_a_prompt_beyond_its_cache_in_one_line(
        exported):
    out, result, _ = exported
    assert result.exit_code == 0, result.output
    artifact = out / json.loads((out / "llm_export.json").read_text())["artifact"]
    result = runner.invoke(app, ["llm", "bench", str(artifact), "--repeats", "1",
                                 "--prompt-lengths", "8,70", "--new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [row["threads"] for row in rows] == [1] and rows[0]["format"] == "tflite"
    assert set(rows[0]["ttft_ms"]) == {"8", "70"} and rows[0]["decode_tok_s"] > 0
    result = runner.invoke(app, ["llm", "bench", str(artifact), "--repeats", "1",
                                 "--prompt-lengths", str(KV_CACHE), "--new-tokens", "4"])
    assert f"exceed the model's context of {KV_CACHE}" in _one_line_error(result)
