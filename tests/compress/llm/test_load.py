"""Loading, saving and inspecting decoders (edgecompress.compress.llm.load, gguf, families)."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from edgecompress.compress.llm import gguf
from edgecompress.compress.llm.load import inspect_lm, load_lm, resolve_lm
from edgecompress.compress.models.loading import load_model
from edgecompress.errors import UserError
from tests.compress.llm.tiny import FAMILIES, tiny_lm

IDS = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])


@pytest.mark.parametrize("family", FAMILIES)
def test_load_lm_gives_identical_logits_when_saved_and_reloaded(family, tiny_dirs):
    expected = tiny_lm(family).model(input_ids=IDS).logits
    loaded = load_lm(tiny_dirs[family])
    assert loaded.shape.family == family
    assert torch.equal(loaded.model(input_ids=IDS).logits, expected)


def test_inspect_lm_reports_shape_and_params_when_model_is_tiny_llama(tiny_dirs):
    info = inspect_lm(load_lm(tiny_dirs["llama"]))
    assert (info["family"], info["layers"], info["heads"], info["kv_heads"]) == ("llama", 3, 4, 2)
    assert (info["head_dim"], info["hidden"], info["ffn"], info["context"]) == (8, 32, 64, 256)
    assert info["vocab"] == info["tokenizer_size"] and not info["tied_embeddings"]
    # embedding + untied head (2 x vocab x 32) + 3 layers of attention, MLP and two norms + norm
    layer = 32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 64 + 2 * 32
    assert info["params"] == 2 * info["vocab"] * 32 + 3 * layer + 32


def test_inspect_lm_counts_tied_embedding_once_when_model_is_gpt2(tiny_dirs):
    info = inspect_lm(load_lm(tiny_dirs["gpt2"]))
    assert info["tied_embeddings"] and info["ffn"] == 64
    assert info["params"] == sum(p.numel() for p in tiny_lm("gpt2").model.parameters())


def test_resolve_lm_refuses_family_when_checkpoint_is_an_encoder(tiny_bert_dir):
    with pytest.raises(UserError, match="unsupported decoder family 'bert'.*llama, qwen2"):
        resolve_lm(tiny_bert_dir)


def test_resolve_lm_refuses_remote_code_when_config_has_auto_map(tiny_dirs, tmp_path):
    for file in tiny_dirs["llama"].iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "auto_map": {"x": "y.Z"}}))
    with pytest.raises(UserError, match="remote code"):
        resolve_lm(tmp_path)


def test_load_model_points_to_llm_commands_when_checkpoint_is_a_decoder(tiny_dirs):
    with pytest.raises(UserError, match="decoder-only language model.*edgecompress llm"):
        load_model(tiny_dirs["qwen2"])


def _gguf_bytes(arch: str) -> bytes:
    """A GGUF v3 header with no tensors: general.architecture, a u32, a string array."""
    def string(text):
        return struct.pack("<Q", len(text)) + text.encode()

    fields = (string("general.architecture") + struct.pack("<I", 8) + string(arch)
              + string(f"{arch}.block_count") + struct.pack("<II", 4, 30)
              + string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2)
              + string("a") + string("bc"))
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 3) + fields


def test_read_gguf_header_reads_scalars_and_skips_arrays_when_file_is_gguf(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes("llama"))
    meta = gguf.read_gguf_header(path)
    assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 30
    assert "tokenizer.ggml.tokens" not in meta


def test_resolve_lm_refuses_gguf_before_loading_when_architecture_unsupported(tmp_path,
                                                                              monkeypatch):
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes("mamba"))
    monkeypatch.setattr(gguf, "_load_gguf", lambda p: pytest.fail("weights were loaded"))
    with pytest.raises(UserError, match="GGUF architecture 'mamba' is not supported"):
        resolve_lm(path, cache_dir=tmp_path)


def test_read_gguf_header_refuses_file_when_magic_is_wrong(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(UserError, match="not a GGUF file"):
        gguf.read_gguf_header(path)


def test_convert_gguf_names_the_extra_when_gguf_package_missing(tmp_path, monkeypatch):
    import importlib.util

    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes("llama"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real(name, *a))
    # accelerate may be missing too where the llm extra is not installed (CI's default run)
    with pytest.raises(UserError,
                       match=r"needs gguf( and accelerate)?: pip install 'edgecompress\[llm\]'"):
        gguf.convert_gguf(path, tmp_path)
