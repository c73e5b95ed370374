"""Perplexity, KL, top-1 agreement and continuations (edgecompress.compress.llm.metrics)."""

from __future__ import annotations

import math

import pytest
import torch

from edgecompress.compress.config import FieldError
from edgecompress.compress.llm.metrics import (
    EvalConfig,
    check_prompts,
    check_same_tokenizer,
    continuations,
    evaluate_lm,
    leading_tokens,
    score_windows,
    summarize,
    token_windows,
)
from edgecompress.errors import UserError
from tests.compress.llm.tiny import TEXTS, tiny_lm, tokenizer

CONFIG = EvalConfig(context=32, stride=12, windows=5, max_new_tokens=4, resamples=200)


def test_token_windows_score_each_stream_token_once_when_windows_overlap():
    windows = token_windows(tokenizer(), TEXTS, CONFIG)
    assert len(windows) == 5 and all(ids.shape == (1, 32) for ids, _ in windows)
    assert [scored for _, scored in windows] == [31, 12, 12, 12, 12]  # the first token unscored
    # window k's scored tokens continue the stream where window k-1's ended
    assert torch.equal(windows[1][0][0, -12 - 19:-12], windows[0][0][0, -19:])


def test_token_windows_start_with_bos_when_the_tokenizer_adds_it():
    plain, with_bos = tokenizer(), tokenizer(adds_bos=True)
    assert leading_tokens(plain) == [] and leading_tokens(with_bos) == [1]
    windows = token_windows(with_bos, TEXTS, CONFIG)
    assert all(ids.shape == (1, 32) and ids[0, 0].item() == 1 for ids, _ in windows)
    assert [scored for _, scored in windows] == [31, 12, 12, 12, 12]  # BOS predicts token 1
    # the same stream: 31 tokens behind BOS instead of 32
    assert torch.equal(windows[0][0][0, 1:], token_windows(plain, TEXTS, CONFIG)[0][0][0, :31])


def test_token_windows_refuses_text_when_too_short_for_the_windows():
    with pytest.raises(UserError, match="need 59 tokens|windows of 32"):
        token_windows(tokenizer(), ["a short text"], CONFIG)


def test_perplexity_matches_direct_loss_when_computed_by_hand():
    model = tiny_lm("llama").model
    windows = token_windows(tokenizer(), TEXTS, CONFIG)
    result = summarize(score_windows(model, windows), CONFIG)
    nll = tokens = 0.0
    with torch.no_grad():
        for ids, scored in windows:
            labels = ids.clone()
            labels[0, :-scored] = -100  # HF's recipe: only the new tokens count
            nll += model(input_ids=ids, labels=labels).loss.item() * scored
            tokens += scored
    assert math.isfinite(result["perplexity"])
    assert result["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    low, high = result["perplexity_ci"]
    assert low <= result["perplexity"] <= high and low < high


@pytest.mark.parametrize("family", ["llama", "gemma3_text", "gpt2"])
def test_kl_is_zero_and_top1_one_when_model_is_its_own_reference(family):
    model = tiny_lm(family).model
    result = summarize(score_windows(model, token_windows(tokenizer(), TEXTS, CONFIG), model),
                       CONFIG)
    assert result["kl"] == pytest.approx(0.0, abs=1e-9)
    assert result["top1_agreement"] == 1.0 and result["perplexity_ratio"] == 1.0
    assert result["perplexity"] == result["reference_perplexity"]


def test_kl_is_positive_and_top1_below_one_when_models_differ():
    windows = token_windows(tokenizer(), TEXTS, CONFIG)
    result = summarize(score_windows(tiny_lm("llama", seed=1).model, windows,
                                     tiny_lm("llama").model), CONFIG)
    assert result["kl"] > 1e-4 and result["top1_agreement"] < 1.0
    assert result["kl_ci"][0] <= result["kl"] <= result["kl_ci"][1]


def test_continuations_agree_fully_when_reference_is_the_model():
    model = tiny_lm("qwen3").model
    rows = continuations(model, tokenizer(), ["The match ended"], 5, reference=model)
    assert rows[0]["same_prefix"] == rows[0]["new_tokens"] == 5
    assert rows[0]["text"] == rows[0]["reference_text"]


def test_evaluate_lm_returns_config_metrics_and_continuations_when_reference_given():
    model = tiny_lm("phi3").model
    windows = token_windows(tokenizer(), TEXTS, CONFIG)
    result = evaluate_lm(model, tokenizer(), windows, CONFIG, reference=model,
                         prompts=("The film",))
    assert result["config"]["context"] == 32 and result["windows"] == 5
    assert len(result["continuations"]) == 1 and "bootstrap" in result["interval"]


def test_eval_config_refuses_stride_when_not_below_context():
    with pytest.raises(FieldError, match="stride"):
        EvalConfig(context=64, stride=64)


def test_check_prompts_refuses_prompt_when_longer_than_context():
    with pytest.raises(UserError, match="exceeds the model's context of 16"):
        check_prompts(tokenizer(), [TEXTS[0]], context=16, max_new_tokens=4)


def test_check_same_tokenizer_refuses_when_vocabularies_differ(tiny_bert_dir):
    from transformers import AutoTokenizer

    other = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    with pytest.raises(UserError, match="does not match"):
        check_same_tokenizer(tokenizer(), other, ("a", "b"))
