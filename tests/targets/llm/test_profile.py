"""LLM target profiles (`kind = "llm"`): parsed with the encoder profiles' parser, kept apart
from the encoder targets, every mistake one line naming the key."""

from __future__ import annotations

import pytest

from edgecompress.errors import UserError
from edgecompress.targets.llm.profile import list_llm_profiles, load_llm_profile
from edgecompress.targets.profiles import list_profiles, load_profile

GOOD = """kind = "llm"
name = "mine"
description = "test"
format = "onnx-genai"
runtime = "onnxruntime-genai"
threads = 1
scheme = "int4-rtn"
[gate]
kl_max = 0.1
top1_min = 0.9
"""


def test_x86_cpu_llm_loads_with_its_gate_when_named():
    profile = load_llm_profile("x86-cpu-llm")
    assert (profile.format, profile.threads) == ("onnx-genai", 2)
    assert profile.scheme.startswith("int4")
    assert profile.gate.kl_max > 0 and 0 < profile.gate.top1_min <= 1
    assert [p.name for p in list_llm_profiles()] == ["x86-cpu-llm"]


def test_encoder_listing_leaves_llm_targets_out_when_listed():
    assert "x86-cpu-llm" not in {p.name for p in list_profiles()}
    assert "x86-cpu" in {p.name for p in list_profiles()}


def test_load_profile_names_the_llm_command_when_given_an_llm_target():
    with pytest.raises(UserError, match="language-model target.*llm export"):
        load_profile("x86-cpu-llm")


def test_load_llm_profile_refuses_an_encoder_target_when_named():
    with pytest.raises(UserError, match="x86-cpu is not a language-model target"):
        load_llm_profile("x86-cpu")
    with pytest.raises(UserError, match="unknown LLM target 'nope'"):
        load_llm_profile("nope")


def test_user_llm_profile_loads_with_defaults_when_only_required_keys_given(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    profile = load_llm_profile(path)
    assert (profile.block_size, profile.accuracy_level, profile.gate_windows) == (32, 4, 8)


@pytest.mark.parametrize(("edit", "message"), [
    (("top1_min = 0.9", "top1_min = 1.5"), "gate.top1_min: expected a fraction"),
    (("kl_max = 0.1", "kl_max = 'low'"), "gate.kl_max: expected a number"),
    (('scheme = "int4-rtn"', 'scheme = "int3"'), "scheme: expected one of int4-rtn"),
    (("[gate]", "block_size = 48\n[gate]"), "block_size: expected one of"),
    (('kind = "llm"', 'kind = "tts"'), "kind: expected one of encoder, llm"),
    (("[gate]\nkl_max = 0.1\ntop1_min = 0.9\n", ""), r"\[gate\]: missing table"),
])
def test_user_llm_profile_is_refused_naming_the_key_when_malformed(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(UserError, match=message):
        load_llm_profile(path)


def test_with_scheme_switches_or_lists_the_format_schemes_when_asked():
    profile = load_llm_profile("x86-cpu-llm")
    assert profile.with_scheme("int4-rtn").scheme == "int4-rtn"
    with pytest.raises(UserError, match="has no scheme 'int3'.*int4-rtn"):
        profile.with_scheme("int3")
