"""LLM target profiles (`kind = "llm"`, one LLMProfile type for ONNX Runtime GenAI and GGUF):
parsed with the encoder profiles' parser, kept apart from the encoder targets in the library and
listed in their own table by `targets list`, every mistake one line naming the key."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
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
    assert [p.name for p in list_llm_profiles()] == ["android-xnnpack-llm", "arm64-phone-llm",
                                                     "llamacpp", "x86-cpu-llm"]


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


def test_llamacpp_gates_each_scheme_by_its_own_table_when_the_scheme_changes():
    profile = load_llm_profile("llamacpp")
    assert (profile.format, profile.runtime, profile.scheme) == ("gguf", "llama.cpp", "q4_k_m")
    assert profile.block_size is None and profile.accuracy_level is None
    f32 = profile.with_scheme("f32").gate
    assert f32.kl_max < profile.gate.kl_max and f32.top1_min > profile.gate.top1_min
    assert profile.with_scheme("q8_0").gate == profile.gate  # no table: the [gate] default
    with pytest.raises(UserError, match="has no scheme 'int4-rtn'.*q4_k_m"):
        profile.with_scheme("int4-rtn")


GGUF = GOOD.replace('format = "onnx-genai"', 'format = "gguf"').replace(
    'runtime = "onnxruntime-genai"', 'runtime = "llama.cpp"').replace(
    'scheme = "int4-rtn"', 'scheme = "q8_0"')


@pytest.mark.parametrize(("edit", "message"), [
    (("[gate]", "block_size = 32\n[gate]"), "block_size: an ONNX Runtime GenAI setting"),
    (("top1_min = 0.9\n", "top1_min = 0.9\n[gate.q3]\nkl_max = 1\ntop1_min = 0.5\n"),
     "gate.q3: not a scheme of gguf"),
    (("top1_min = 0.9\n", "top1_min = 0.9\n[gate.f32]\nkl_max = 1\n"),
     r"gate\.f32\.top1_min: missing"),
    (("top1_min = 0.9\n", "top1_min = 0.9\n[gate.f32]\nkl_max = 0\ntop1_min = 1\n"),
     r"gate\.f32\.kl_max: expected a number > 0"),
    (('runtime = "llama.cpp"', 'runtime = "ollama"'), "runtime: expected 'llama.cpp'"),
])
def test_user_gguf_profile_is_refused_naming_the_key_when_malformed(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(GGUF.replace(*edit))
    assert load_llm_profile(_write(tmp_path / "good.toml", GGUF)).scheme == "q8_0"
    with pytest.raises(UserError, match=message):
        load_llm_profile(path)


def _write(path, text):
    path.write_text(text)
    return path


def test_targets_list_shows_llm_targets_in_their_own_table_when_listed():
    listed = CliRunner().invoke(app, ["targets", "list"])
    assert listed.exit_code == 0, listed.output
    encoders, _, llm = listed.output.partition("Language-model targets")
    assert "x86-cpu " in encoders and "rpi5" in encoders and "llamacpp" not in encoders
    assert "llamacpp" in llm and "x86-cpu-llm" in llm and "KL <= 0.15" in llm
    as_json = json.loads(CliRunner().invoke(app, ["targets", "list", "--json"]).output)
    kinds = {p["name"]: p["kind"] for p in as_json}
    assert kinds["x86-cpu"] == "encoder" and kinds["llamacpp"] == kinds["x86-cpu-llm"] == "llm"


def test_targets_show_gives_an_llm_target_as_the_list_does_when_named():
    shown = CliRunner().invoke(app, ["targets", "show", "llamacpp", "--json"])
    assert shown.exit_code == 0, shown.output
    listed = json.loads(CliRunner().invoke(app, ["targets", "list", "--json"]).output)
    assert json.loads(shown.output) == next(p for p in listed if p["name"] == "llamacpp")
    assert json.loads(shown.output)["gate_overrides"][0][0] == "f32"


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
