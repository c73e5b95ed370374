"""litert-torch's generative API glue (export_litert.py) and the LiteRT session
(litert_llm.py): what the converter refuses before it starts, the settings a SmolLM2 config maps
to, teacher-forced logits and greedy decoding over the prefill / decode signatures."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from edgecompress.errors import UserError
from edgecompress.targets.llm.export_litert import (
    check_litert_input,
    convert_litert,
    litert_settings,
)
from edgecompress.targets.llm.profile import LLMProfile, load_llm_profile
from edgecompress.targets.llm.session import open_session
from tests.targets.llm.tiny_genai import tiny_llama_dir
from tests.targets.llm.tiny_litert import KV_CACHE, PREFILL, needs_litert, tiny_tflite

SMOLLM2 = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
           "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
           "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
           "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
           "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
           "hidden_act": "silu", "attention_bias": False, "mlp_bias": False}


def _config_dir(tmp_path, **changes):
    (tmp_path / "config.json").write_text(json.dumps({**SMOLLM2, **changes}))
    return tmp_path


def test_smollm2_maps_to_the_smollm_decoder_with_its_shape_when_read_from_config():
    settings = litert_settings(SMOLLM2, "arm64-phone-llm")
    assert settings["example"] == "smollm" and settings["tied"] and not settings["qkv_bias"]
    assert (settings["layers"], settings["hidden"], settings["heads"], settings["kv_heads"],
            settings["head_dim"], settings["ffn"]) == (30, 576, 9, 3, 64, 1536)
    assert settings["rope_theta"] == 100000.0 and settings["eps"] == 1e-5
    assert litert_settings({**SMOLLM2, "architectures": ["Qwen2ForCausalLM"]},
                           "t")["qkv_bias"]


def test_litert_input_is_refused_naming_the_target_when_the_architecture_is_qwen3(tmp_path):
    _config_dir(tmp_path, architectures=["Qwen3ForCausalLM"], model_type="qwen3")
    with pytest.raises(UserError, match="target arm64-phone-llm cannot take Qwen3ForCausalLM"):
        check_litert_input(tmp_path, "arm64-phone-llm", kv_cache_size=256,
                           prefill_lengths=(64,))
    with pytest.raises(UserError, match="cannot take Qwen3ForCausalLM"):
        convert_litert(tmp_path, tmp_path / "out", scheme="dynamic-int8", kv_cache_size=256,
                       prefill_lengths=(64,))
    assert not (tmp_path / "out").exists()


def test_litert_input_is_refused_when_llama_scales_its_rope(tmp_path):
    _config_dir(tmp_path, rope_parameters={"rope_type": "llama3", "rope_theta": 5e5})
    with pytest.raises(UserError, match="RoPE scaling 'llama3'"):
        check_litert_input(tmp_path, "t", kv_cache_size=256, prefill_lengths=(64,))


def test_litert_input_is_refused_when_the_kv_cache_exceeds_the_context(tmp_path):
    _config_dir(tmp_path, max_position_embeddings=512)
    with pytest.raises(UserError, match="kv_cache_size 1280 exceeds the model's context of 512"):
        check_litert_input(tmp_path, "t", kv_cache_size=1280, prefill_lengths=(64,))


def test_unknown_litert_scheme_is_refused_listing_the_known(tmp_path):
    with pytest.raises(UserError, match="known: dynamic-int8"):
        convert_litert(tmp_path, tmp_path / "out", scheme="int3", kv_cache_size=256,
                       prefill_lengths=(64,))


def test_arm64_phone_llm_profile_carries_the_cache_and_prefill_lengths_when_loaded():
    profile = load_llm_profile("arm64-phone-llm")
    assert (profile.format, profile.runtime, profile.scheme, profile.threads) == \
        ("tflite", "litert", "dynamic-int8", 4)
    assert profile.kv_cache_size == 1280 and profile.prefill_lengths == (64, 128, 256, 512)
    assert profile.with_scheme("fp32").gate.kl_max < profile.gate.kl_max


@pytest.mark.parametrize("changes, message", [
    ({"format": "gguf", "runtime": "llama.cpp", "scheme": "q8_0", "kv_cache_size": 256},
     "kv_cache_size: a LiteRT setting"),
    ({"prefill_lengths": (128, 64)}, "prefill_lengths: expected increasing"),
    ({"kv_cache_size": 100}, "kv_cache_size: expected at least the longest prefill"),
])
def test_llm_profile_refuses_litert_settings_when_they_do_not_fit(changes, message):
    fields = {"name": "t", "description": "t", "format": "tflite", "runtime": "litert",
              "threads": 1, "scheme": "dynamic-int8", "kl_max": 0.1, "top1_min": 0.8,
              "gate_context": 64, "prefill_lengths": (64, 128), **changes}
    with pytest.raises(ValueError, match=message):
        LLMProfile(**fields)


def test_session_names_the_missing_package_in_one_line_when_ai_edge_litert_is_absent(
        tmp_path, monkeypatch):
    artifact = tmp_path / "model.tflite"
    artifact.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # find_spec: ValueError
    with pytest.raises(UserError, match="needs ai-edge-litert, a dependency of edgecompress"):
        open_session(artifact, threads=1)


@needs_litert
def test_teacher_forced_logits_have_one_row_per_token_and_agree_with_torch_when_int8():
    from edgecompress.compress.llm.load import load_weights
    from edgecompress.compress.llm.reference import TorchSession

    session = open_session(tiny_tflite("dynamic-int8"), threads=1)
    assert session.format == "tflite" and session.context == KV_CACHE
    assert session.prefill_lengths == PREFILL
    ids = list(range(3, 43))
    logits = session.logits(ids)
    reference = TorchSession(load_weights(tiny_llama_dir())).logits(ids)
    assert logits.shape == reference.shape == (40, session.vocab)
    assert logits.dtype == np.float32
    assert (logits.argmax(-1) == reference.argmax(-1)).mean() >= 0.9


@needs_litert
def test_session_refuses_in_one_line_when_prompt_and_new_tokens_exceed_the_cache():
    session = open_session(tiny_tflite("dynamic-int8"), threads=1)
    with pytest.raises(UserError, match=f"130 tokens exceed the model's context of {KV_CACHE}"):
        session.generate(list(range(3, 123)), 10)
    with pytest.raises(UserError, match="exceed the model's context"):
        session.logits([5] * (KV_CACHE + 1))


@needs_litert
def test_greedy_tokens_match_teacher_forced_argmax_when_the_prompt_spans_two_prefill_chunks():
    session = open_session(tiny_tflite("dynamic-int8"), threads=1)
    prompt = [3 + i % 300 for i in range(90)]  # 89 prefilled: one chunk of 64, one of 25 -> 64
    generation = session.generate(prompt, 6)
    assert len(generation.tokens) == 6 and generation.ttft_s > 0 and generation.decode_s > 0
    # the same graph, one decode per position: the greedy choices, up to masked EOS
    logits = session.logits(prompt + generation.tokens[:-1])[len(prompt) - 1:]
    logits[:, session._eos] = -np.inf
    assert logits.argmax(-1).tolist() == generation.tokens


@pytest.mark.slow
@needs_litert
def test_fp32_conversion_is_the_checkpoint_when_logits_and_greedy_are_compared():
    from edgecompress.compress.llm.load import load_weights
    from edgecompress.compress.llm.reference import TorchSession

    session = open_session(tiny_tflite("fp32"), threads=1)
    reference = TorchSession(load_weights(tiny_llama_dir()))
    ids = list(range(5, 125))
    assert np.abs(session.logits(ids) - reference.logits(ids)).max() < 1e-3
    for length in (1, 20, 70, 100):
        prompt = list(range(3, 3 + length))
        assert session.generate(prompt, 20).tokens == reference.generate(prompt, 20).tokens
