"""The LLM bench: one child per artifact x threads, interleaved repeats, host recorded."""

from __future__ import annotations

import pytest

from edgecompress.errors import UserError
from edgecompress.targets.llm.bench import artifact_bytes, bench_llm, prompt_ids
from tests.targets.llm.tiny_genai import needs_genai


def test_prompt_ids_are_fixed_and_inside_the_vocabulary_when_drawn():
    ids = prompt_ids(64, 400)
    assert ids == prompt_ids(64, 400) and len(ids) == 64 and min(ids) >= 100 and max(ids) < 400


def test_bench_refuses_an_unknown_artifact_before_any_child_runs(tmp_path):
    with pytest.raises(UserError, match="not an LLM artifact"):
        bench_llm([tmp_path], threads=(1,))
    with pytest.raises(UserError, match="need repeats >= 1"):
        bench_llm([tmp_path], threads=(1,), repeats=0)


@needs_genai
def test_bench_reports_ttft_decode_rss_and_size_per_thread_count_when_run(genai_int4):
    result = bench_llm([genai_int4], threads=(1, 2), repeats=2, prompt_lengths=(16, 64),
                       new_tokens=8)
    assert result["host"]["cpu_model"] and result["settings"]["repeats"] == 2
    assert result["host"]["runtimes"]["onnxruntime-genai"]
    assert [row["threads"] for row in result["rows"]] == [1, 2]
    for row in result["rows"]:
        assert set(row["ttft_ms"]) == {"16", "64"} and all(v > 0 for v in row["ttft_ms"].values())
        assert row["decode_tok_s"] > 0 and row["peak_rss_mb"] > 10 and len(row["runs"]) == 2
        assert row["size_bytes"] == artifact_bytes(genai_int4) and row["format"] == "onnx-genai"


@needs_genai
def test_bench_refuses_in_one_line_when_the_prompt_exceeds_the_context(genai_int4):
    with pytest.raises(UserError, match="exceed the model's context of 256"):
        bench_llm([genai_int4], threads=(1,), repeats=1, prompt_lengths=(300,), new_tokens=4)
