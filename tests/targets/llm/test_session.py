"""LLM sessions over ONNX Runtime GenAI: teacher-forced logits at every position and greedy
generation, checked against the torch model the artifact was built from."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edgecompress.errors import UserError
from edgecompress.targets.llm.session import Generation, artifact_format, open_session
from tests.targets.llm.tiny_genai import needs_genai

IDS = [5, 17, 33, 80, 120, 9, 44, 300, 12, 250, 7, 99]


@pytest.fixture(scope="module")
def reference(llama_dir):
    from edgecompress.compress.llm.load import load_weights
    from edgecompress.compress.llm.reference import TorchSession

    return TorchSession(load_weights(llama_dir))


def test_artifact_format_refuses_a_folder_when_it_has_no_genai_config(tmp_path):
    with pytest.raises(UserError, match="not an LLM artifact"):
        artifact_format(tmp_path)
    with pytest.raises(UserError, match="not found"):
        open_session(tmp_path / "missing", threads=1)


def test_open_session_names_the_llm_extra_when_onnxruntime_genai_is_missing(tmp_path,
                                                                             monkeypatch):
    (tmp_path / "genai_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)  # import fails as if absent
    with pytest.raises(UserError, match=r"pip install 'edgecompress\[llm\]'"):
        open_session(tmp_path, threads=1)


def test_generation_decode_rate_counts_tokens_after_the_first_when_computed():
    assert Generation([1, 2, 3, 4, 5], ttft_s=0.5, decode_s=2.0).decode_tok_s == 2.0
    assert np.isnan(Generation([1], ttft_s=0.5, decode_s=0.0).decode_tok_s)


@needs_genai
def test_logits_match_torch_at_every_position_when_exported_in_fp32(genai_fp32, reference):
    session = open_session(genai_fp32, threads=1)
    got, want = session.logits(IDS), reference.logits(IDS)
    assert session.format == "onnx-genai" and got.shape == want.shape == (len(IDS), 400)
    assert np.abs(got - want).max() < 1e-3


@needs_genai
def test_generate_gives_the_torch_greedy_tokens_when_exported_in_fp32(genai_fp32, reference):
    session = open_session(genai_fp32, threads=2)
    got, want = session.generate(IDS, 12), reference.generate(IDS, 12)
    assert got.tokens == want.tokens and len(got.tokens) == 12
    assert got.ttft_s > 0 and got.decode_s > 0


@needs_genai
def test_int4_logits_differ_but_keep_shape_when_exported_in_int4(genai_int4, reference):
    got, want = open_session(genai_int4, threads=1).logits(IDS), reference.logits(IDS)
    assert got.shape == want.shape and 1e-4 < np.abs(got - want).max() < 10


@needs_genai
def test_session_refuses_a_sequence_when_longer_than_the_context(genai_fp32):
    session = open_session(genai_fp32, threads=1)
    with pytest.raises(UserError, match="exceed the model's context of 256"):
        session.logits(list(range(3, 303)))
    with pytest.raises(UserError, match="context"):
        session.generate(IDS, 250)
