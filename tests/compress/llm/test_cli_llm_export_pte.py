"""`edgecompress llm export --target <an ExecuTorch LLM profile>` on the tiny Llama, through
typer's CliRunner: the 8da4w .pte passes its gate, reloads and generates the greedy tokens its
gate recorded, gives logits at every position, and refuses what its static cache cannot hold;
GPT-2 is refused by name before converting. One export per module (~1 min of CPU)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.errors import UserError
from tests.compress.llm.export_helpers import write_profile, write_text_csv
from tests.compress.llm.test_cli_llm import _one_line_error
from tests.compress.llm.tiny import TEXTS
from tests.targets.llm.tiny_genai import tiny_llama_dir

needs_executorch = pytest.mark.skipif(
    importlib.util.find_spec("executorch") is None,
    reason="needs ExecuTorch: pip install 'edgecompress[executorch]'")
runner = CliRunner()
CACHE = 128  # the test target's static KV cache


def _profile(folder, kl_max: float = 2.0, top1_min: float = 0.3) -> str:
    """A tiny ExecuTorch target: 8da4w as android-xnnpack-llm, a 128-position cache. The tiny
    random Llama is far from a trained model's weights; int4 groups cost it more top-1."""
    return write_profile(folder, name="tiny-pte", format="pte", runtime="executorch",
                         scheme="8da4w", kl_max=kl_max, top1_min=top1_min,
                         extra=f"max_context = {CACHE}\n")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(out folder, the export's record): one passing 8da4w export of the tiny Llama."""
    if importlib.util.find_spec("executorch") is None:
        pytest.skip("needs ExecuTorch: pip install 'edgecompress[executorch]'")
    tmp = tmp_path_factory.mktemp("pte")
    out = tmp / "out"
    result = runner.invoke(app, ["llm", "export", str(tiny_llama_dir()), "--target",
                                 _profile(tmp), "--out", str(out), "--dataset",
                                 str(write_text_csv(tmp)), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "llm_export.json").read_text())


def test_llm_export_names_the_target_before_converting_when_it_cannot_take_gpt2(
        tmp_path, tiny_dirs):
    result = runner.invoke(app, ["llm", "export", str(tiny_dirs["gpt2"]), "--target",
                                 _profile(tmp_path), "--out", str(tmp_path / "out"),
                                 "--dataset", str(write_text_csv(tmp_path))])
    assert "target tiny-pte cannot take GPT2LMHeadModel" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_export_refuses_a_prompt_in_one_line_when_longer_than_the_static_cache(tmp_path):
    result = runner.invoke(app, ["llm", "export", str(tiny_llama_dir()), "--target",
                                 _profile(tmp_path), "--out", str(tmp_path / "out"),
                                 "--dataset", str(write_text_csv(tmp_path)), "--prompt",
                                 " ".join(TEXTS)])
    assert f"exceeds the model's context of {CACHE}" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


@needs_executorch
def test_llm_export_writes_a_gated_8da4w_pte_when_the_gate_passes(exported):
    out, record = exported
    assert record["artifact"] == "model.pte" and record["format"] == "pte"
    assert record["gate"]["passed"] and record["gate"]["runtime"] == "pte"
    builder = record["builder"]
    assert (builder["qlinear"], builder["qlinear_group_size"], builder["qembedding"]) == \
        ("8da4w", 32, "8w")
    assert builder["max_context"] == CACHE and record["size_bytes"] == \
        (out / "model.pte").stat().st_size


@needs_executorch
def test_reloaded_pte_generates_the_greedy_tokens_its_gate_recorded_when_reopened(exported):
    from edgecompress.compress.llm.load import load_tokenizer
    from edgecompress.targets.llm.session import open_session

    out, record = exported
    session = open_session(out / "model.pte", threads=1)
    tokenizer = load_tokenizer(tiny_llama_dir())
    for row in record["gate"]["greedy"]:
        got = session.generate(tokenizer(row["prompt"])["input_ids"], row["new_tokens"])
        assert got.tokens == row["tokens"] and got.ttft_s > 0 and got.decode_s > 0


@needs_executorch
def test_pte_logits_cover_every_position_and_refuse_more_than_the_cache_when_asked(exported):
    from edgecompress.targets.llm.session import open_session

    session = open_session(exported[0] / "model.pte", threads=1)
    ids = [(7 * i) % 390 + 3 for i in range(CACHE)]
    logits = session.logits(ids)  # the whole cache: one chunk of 127 tokens, then one more
    assert logits.shape == (CACHE, 400) and logits.dtype == np.float32
    assert np.abs(session.logits(ids[:20]) - logits[:20]).max() < 1e-4  # the cache is reused
    with pytest.raises(UserError, match=f"{CACHE + 1} tokens exceed the model's context of "
                                        f"{CACHE}"):
        session.logits([*ids, 5])
    with pytest.raises(UserError, match="exceed the model's context"):
        session.generate(ids[:120], 9)


@needs_executorch
def test_llm_bench_times_the_pte_when_given_it(exported):
    result = runner.invoke(app, ["llm", "bench", str(exported[0] / "model.pte"), "--repeats",
                                 "1", "--prompt-lengths", "8,16", "--new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [(row["format"], row["threads"]) for row in rows] == [("pte", 1)]
    assert rows[0]["decode_tok_s"] > 0 and set(rows[0]["ttft_ms"]) == {"8", "16"}


@needs_executorch
def test_llm_eval_of_the_pte_gives_its_gate_numbers_when_at_the_gate_windows(exported,
                                                                             tmp_path):
    out, record = exported
    result = runner.invoke(app, ["llm", "eval", str(out / "model.pte"), "--dataset",
                                 str(write_text_csv(tmp_path)), "--context", "32", "--stride",
                                 "16", "--windows", "3", "--max-new-tokens", "4", "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output[result.output.index("{"):])  # after the note
    gate = record["gate"]
    assert evaluated["runtime"] == "pte" and evaluated["tokens"] == gate["tokens"]
    assert evaluated["kl"] == pytest.approx(gate["kl"], rel=1e-6)
    assert [row["text"] for row in evaluated["continuations"]] == \
        [row["text"] for row in gate["greedy"]]


def test_llm_eval_asks_for_a_reference_in_one_line_when_a_pte_has_no_record(tmp_path):
    (tmp_path / "model.pte").write_bytes(b"\0" * 16)
    result = runner.invoke(app, ["llm", "eval", str(tmp_path / "model.pte")])
    assert "--reference is needed" in _one_line_error(result)
