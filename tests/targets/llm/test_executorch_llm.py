"""The ExecuTorch LLM target without exporting anything: its profile, what its exporter refuses
before converting, and the one line a missing `executorch` extra gives (the exported artifact
itself is tested through the CLI in tests/compress/llm/test_cli_llm_export_pte.py)."""

from __future__ import annotations

import json
import sys

import pytest

from edgecompress.errors import UserError
from edgecompress.targets.llm.export_executorch import (
    build_pte,
    check_export_input,
    more_bits,
    sensitive_linear,
)
from edgecompress.targets.llm.profile import load_llm_profile
from edgecompress.targets.llm.session import artifact_format, open_session


def test_android_xnnpack_llm_loads_as_optimum_executorch_configures_xnnpack_when_named():
    profile = load_llm_profile("android-xnnpack-llm")
    assert (profile.format, profile.runtime) == ("pte", "executorch")
    assert profile.scheme == "8da4w-mixed"  # the recipe's 8da4w is refused on SmolLM2
    assert (profile.group_size, profile.max_context, profile.threads) == (32, 1024, 2)
    assert profile.with_scheme("fp32").gate.kl_max < profile.gate.kl_max


def test_more_bits_picks_the_layers_llama_cpp_gives_q4_k_m_six_bits_when_asked():
    # llama.cpp's use_more_bits for a 30-layer model (SmolLM2-135M): the first and last eighth
    # (0-2, 26-29) and every third layer from n/8 + 2 (5, 8, ..., 23)
    assert [i for i in range(30) if more_bits(i, 30)] == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26,
                                                          27, 28, 29]
    assert sensitive_linear("lm_head", 30) and sensitive_linear("model.layers.5.mlp.down_proj", 30)
    assert sensitive_linear("model.layers.0.self_attn.v_proj", 30)
    assert not sensitive_linear("model.layers.5.self_attn.q_proj", 30)
    assert not sensitive_linear("model.layers.6.mlp.down_proj", 30)


def test_8da4w_mixed_keeps_the_head_and_the_sensitive_projections_in_int8_when_quantized():
    pytest.importorskip("torchao",
                        reason="needs ExecuTorch: pip install 'edgecompress[executorch]'")
    import torch
    import transformers as hf

    from edgecompress.targets.llm.export_executorch import _quantize
    from tests.targets.llm.tiny_genai import tiny_llama_dir

    model = hf.AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir()), dtype=torch.float32)
    kept = _quantize(model.eval(), "8da4w-mixed", 32)
    # 2 layers: use_more_bits picks layer 1 (the last eighth), whose v_proj and down_proj stay int8
    assert kept == ["lm_head", "model.layers.1.mlp.down_proj", "model.layers.1.self_attn.v_proj"]
    bits = {name: module.weight.target_dtype for name, module in model.named_modules()
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding))}
    assert {name for name, dtype in bits.items() if dtype == torch.int8} == \
        {*kept, "model.embed_tokens"}
    assert bits["model.layers.0.self_attn.v_proj"] == torch.int4
    assert bits["model.layers.1.mlp.up_proj"] == torch.int4


def test_pte_settings_are_refused_naming_the_key_when_on_another_format():
    from edgecompress.targets.llm.profile import LLMProfile

    with pytest.raises(ValueError, match="max_context: an ExecuTorch setting"):
        LLMProfile("x", "x", "gguf", "llama.cpp", 1, "q8_0", 0.1, 0.9, max_context=512)
    with pytest.raises(ValueError, match="group_size: expected one of"):
        LLMProfile("x", "x", "pte", "executorch", 1, "8da4w", 0.1, 0.9, group_size=48)


def test_check_export_input_names_the_target_when_it_cannot_take_gpt2_or_the_context(
        tiny_dirs_config):
    gpt2, llama = tiny_dirs_config
    with pytest.raises(UserError, match="target android-xnnpack-llm cannot take GPT2LMHeadModel"):
        check_export_input(gpt2, "android-xnnpack-llm", 128)
    with pytest.raises(UserError, match="static cache of 1024 tokens; the model's context is 256"):
        check_export_input(llama, "android-xnnpack-llm", 1024)
    assert check_export_input(llama, "t", 256)["architectures"] == ["LlamaForCausalLM"]


@pytest.fixture
def tiny_dirs_config(tmp_path):
    """Two checkpoint folders holding only config.json (the checks read nothing else)."""
    folders = []
    for name, arch in (("gpt2", "GPT2LMHeadModel"), ("llama", "LlamaForCausalLM")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(
            {"architectures": [arch], "model_type": name, "max_position_embeddings": 256}))
        folders.append(tmp_path / name)
    return folders


def test_pte_session_and_export_name_the_executorch_extra_when_it_is_missing(
        tmp_path, monkeypatch, tiny_dirs_config):
    pte = tmp_path / "model.pte"
    pte.write_bytes(b"\0" * 16)
    assert artifact_format(pte) == "pte"
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)  # import fails as if absent
    extra = r"needs ExecuTorch: pip install 'edgecompress\[executorch\]'"
    with pytest.raises(UserError, match=extra):
        open_session(pte, threads=1)
    with pytest.raises(UserError, match=r"pip install 'edgecompress\[executorch\]'"):
        build_pte(tiny_dirs_config[1], tmp_path / "out", scheme="8da4w", max_context=128)
    assert not (tmp_path / "out").exists()


def test_targets_list_shows_android_xnnpack_llm_among_the_llm_targets_when_listed():
    from typer.testing import CliRunner

    from edgecompress.cli import app

    listed = CliRunner().invoke(app, ["targets", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    row = next(p for p in json.loads(listed.output) if p["name"] == "android-xnnpack-llm")
    assert (row["kind"], row["format"], row["max_context"]) == ("llm", "pte", 1024)
