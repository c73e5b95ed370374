"""The LLM verification gate: KL / top-1 of an artifact's session against the torch reference,
with intervals, greedy tokens side by side; a failed gate raises ParityError."""

from __future__ import annotations

import pytest

from edgecompress.compress.llm.gate import (
    gate_lm,
    gate_window_config,
    require_pass,
    score_sessions,
)
from edgecompress.compress.llm.metrics import score_windows, token_windows
from edgecompress.errors import ParityError
from edgecompress.targets.llm.profile import LLMGate
from tests.compress.llm.tiny import TEXTS, tokenizer
from tests.targets.llm.tiny_genai import needs_genai, tiny_genai, tiny_llama_dir

GATE = LLMGate(kl_max=0.01, top1_min=0.99, windows=3, context=32, new_tokens=6)
PROMPTS = {"The match ended": [84, 201, 33], "Ministers will": [120, 7, 250, 9]}


@pytest.fixture(scope="module")
def reference():
    from edgecompress.compress.llm.load import load_weights
    from edgecompress.compress.llm.reference import TorchSession

    return TorchSession(load_weights(tiny_llama_dir()))


@pytest.fixture(scope="module")
def windows():
    return token_windows(tokenizer(), TEXTS, gate_window_config(GATE))


def test_sessions_score_like_the_torch_models_when_both_are_torch(reference, windows):
    by_session = score_sessions(reference, reference, windows)
    by_model = score_windows(reference.model, windows, reference.model)
    assert by_session.nll == pytest.approx(by_model.nll, rel=1e-5)
    assert by_session.kl == pytest.approx([0.0] * 3, abs=1e-6)
    assert list(by_session.top1) == list(by_session.tokens)


@needs_genai
def test_gate_passes_with_greedy_tokens_alike_when_the_artifact_is_fp32(reference, windows):
    from edgecompress.targets.llm.session import open_session

    session = open_session(tiny_genai("fp32"), threads=1)
    record = gate_lm(session, reference, windows, GATE, prompts=PROMPTS, decode=str,
                     resamples=50)
    assert record["passed"] and record["kl"] < 1e-4 and record["top1_agreement"] == 1.0
    assert record["kl_ci"][0] <= record["kl"] <= record["kl_ci"][1]
    assert [row["same_prefix"] for row in record["greedy"]] == [6, 6]
    require_pass(record, "fp32")  # no error


@needs_genai
def test_gate_fails_with_parity_error_when_int4_misses_a_strict_threshold(reference, windows):
    from edgecompress.targets.llm.session import open_session

    session = open_session(tiny_genai("int4-rtn"), threads=1)
    strict = LLMGate(kl_max=1e-6, top1_min=1.0, windows=3, context=32, new_tokens=0)
    record = gate_lm(session, reference, windows, strict, prompts={}, decode=str, resamples=50)
    assert not record["passed"] and record["kl"] > 1e-6 and "greedy" not in record
    with pytest.raises(ParityError, match="mean KL .* \\(max 1e-06\\)"):
        require_pass(record, "int4")
