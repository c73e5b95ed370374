"""A tiny random Llama (hidden 64, 2 layers, 4 query / 2 KV heads, FFN 128) saved as
safetensors, and its ONNX Runtime GenAI exports, built once per test process and shared by
tests/targets/llm and tests/compress/llm (lru_cache: the builder takes ~15 s a scheme)."""

from __future__ import annotations

import importlib.util
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest

needs_genai = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime_genai") is None,
    reason="needs ONNX Runtime GenAI: pip install 'edgecompress[llm]'")


@lru_cache(maxsize=1)
def _root() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgecompress-tiny-genai-"))


@lru_cache(maxsize=1)
def tiny_llama_dir() -> Path:
    """The checkpoint folder (config, model.safetensors, tokenizer)."""
    import torch
    import transformers as hf

    from edgecompress.compress.llm.load import LoadedLM, save_lm
    from tests.compress.llm.tiny import tokenizer

    tok = tokenizer()
    torch.manual_seed(0)
    config = hf.LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
                            pad_token_id=0)
    model = hf.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # sharper distributions than the init's, so top-1 means something
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
        model.lm_head.weight.mul_(8.0)
    out = _root() / "tiny-llama"
    save_lm(LoadedLM(model, tok, Path("."), "tiny-llama"), out)
    return out


@lru_cache(maxsize=4)
def tiny_genai(scheme: str) -> Path:
    """The tiny Llama exported with ONNX Runtime GenAI's builder in `scheme`."""
    from edgecompress.targets.llm.export_ortgenai import build_ortgenai

    out = _root() / f"genai-{scheme}"
    build_ortgenai(tiny_llama_dir(), out, scheme=scheme)
    return out
