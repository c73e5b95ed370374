"""`edgecompress llm export --target llamacpp` (or a GGUF profile) through typer's CliRunner on
the tiny random Llama: what llama.cpp cannot take and a missing tokenizer GGUF are refused in
one line before converting (exit 2, nothing written), a failed gate keeps nothing (exit 1), a
passing GGUF is recorded beside its file and `llm bench` times it from disk."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from tests.compress.llm.test_cli_llm import _one_line_error

pytest.importorskip("gguf", reason="GGUF export needs the gguf package: pip install "
                                   "'edgecompress[llm]'")
pytest.importorskip("llama_cpp", reason="GGUF export and its gate need llama-cpp-python: pip "
                                        "install 'edgecompress[llm]'")

from tests.compress.llm.export_helpers import write_profile, write_text_csv  # noqa: E402
from tests.targets.llm.test_llamacpp import write_vocab_gguf  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def test_csv(tmp_path_factory):
    return write_text_csv(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def vocab(tiny_dirs, tmp_path_factory):
    return write_vocab_gguf(tiny_dirs["llama"], tmp_path_factory.mktemp("vocab") / "vocab.gguf")


def _profile(tmp_path, scheme="f32", kl_max=1e-3, top1_min=0.9):
    return write_profile(tmp_path, name="tiny-gguf", format="gguf", runtime="llama.cpp",
                         scheme=scheme, kl_max=kl_max, top1_min=top1_min)


def _export(model, out, *extra):
    return runner.invoke(app, ["llm", "export", str(model), "--out", str(out), *map(str, extra)])


def test_llm_export_asks_for_vocab_from_in_one_line_when_a_user_checkpoint_has_no_source_gguf(
        tmp_path, tiny_dirs, test_csv):
    result = _export(tiny_dirs["llama"], tmp_path / "out", "--target", "llamacpp", "--dataset",
                     test_csv)
    assert "--vocab-from FILE.gguf is needed: target llamacpp" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_names_what_llama_cpp_cannot_take_before_converting_when_given_gpt2(
        tmp_path, tiny_dirs, test_csv, vocab):
    result = _export(tiny_dirs["gpt2"], tmp_path / "out", "--target", "llamacpp", "--dataset",
                     test_csv, "--vocab-from", vocab)
    assert "GGUF export covers the llama family, not 'gpt2'" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_refuses_vocab_from_in_one_line_when_the_target_is_not_gguf(
        tmp_path, tiny_dirs, test_csv, vocab):
    result = _export(tiny_dirs["llama"], tmp_path / "out", "--dataset", test_csv,
                     "--vocab-from", vocab)
    assert "--vocab-from is for GGUF targets; x86-cpu-llm" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_refuses_a_scheme_llama_cpp_lacks_in_one_line_when_asked(tmp_path, tiny_dirs):
    result = _export(tiny_dirs["llama"], tmp_path / "out", "--target", "llamacpp", "--scheme",
                     "int4-rtn")
    assert "target llamacpp has no scheme 'int4-rtn'" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_keeps_no_gguf_when_the_gate_fails(tmp_path, tiny_dirs, test_csv, vocab,
                                                      capfd):
    result = _export(tiny_dirs["llama"], tmp_path / "out", "--target",
                     _profile(tmp_path, "q4_0", 1e-9, 1.0), "--dataset", test_csv,
                     "--vocab-from", vocab)
    assert result.exit_code == 1 and "parity check failed" in result.output, result.output
    assert "mean KL" in result.output and not (tmp_path / "out").exists()
    assert "llama_model_quantize" not in capfd.readouterr().err  # the quantizer's log is kept


def test_llm_export_writes_a_gated_gguf_that_bench_times_when_the_gate_passes(
        tmp_path, tiny_dirs, test_csv, vocab):
    out = tmp_path / "out"
    result = _export(tiny_dirs["llama"], out, "--target", _profile(tmp_path), "--dataset",
                     test_csv, "--vocab-from", vocab, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "llm_export.json").read_text())
    assert record["format"] == "gguf" and record["artifact"] == "model-f32.gguf"
    assert record["gate"]["passed"] and record["gate"]["runtime"] == "gguf"
    assert record["gate"]["kl"] < 1e-3 and record["builder"]["tokenizer_from"] == "vocab.gguf"
    assert record["size_bytes"] == (out / "model-f32.gguf").stat().st_size
    assert set(record["builder"]["tensor_types"]) == {"F32"}
    assert [row["same_prefix"] for row in record["gate"]["greedy"]] == [4, 4, 4]
    result = runner.invoke(app, ["llm", "bench", str(out / "model-f32.gguf"), "--repeats", "1",
                                 "--prompt-lengths", "8", "--new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [(row["format"], row["threads"]) for row in rows] == [("gguf", 1)]
    assert rows[0]["decode_tok_s"] > 0
