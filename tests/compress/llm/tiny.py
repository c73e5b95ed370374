"""Tiny random decoders of every supported family, with a small byte-level BPE tokenizer
trained in process: every code path of compress/llm runs on them in seconds."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from edgecompress.compress.llm.load import LoadedLM, save_lm

TEXTS = [
    "Shares in the company fell sharply after the results were published on Monday.",
    "The match ended in a draw, and the manager said his side deserved more.",
    "The new phone has a larger screen and a battery that lasts two days.",
    "Ministers will publish the plans for the new railway line next week.",
    "The film won three awards at the festival, including best director.",
] * 8

FAMILIES = ("llama", "qwen2", "qwen3", "gemma3_text", "phi3", "gpt2")


@lru_cache(maxsize=2)
def tokenizer(adds_bos: bool = False):
    """Byte-level BPE (vocabulary ~400) with BOS / EOS, trained on TEXTS; with `adds_bos` it
    starts every text with <s> itself (as Llama 3's and Gemma's do; GPT-2's and Qwen's don't)."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS, vocab_size=400, min_frequency=1,
                            special_tokens=["<pad>", "<s>", "</s>"])
    if adds_bos:
        bpe._tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")


def _config(family: str, layers: int):
    import transformers as hf

    vocab = len(tokenizer())
    common = dict(vocab_size=vocab, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    attention = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    if family == "gpt2":
        return hf.GPT2Config(n_embd=32, n_layer=layers, n_head=4, n_inner=64, n_positions=256,
                             **common)
    cls = {"llama": hf.LlamaConfig, "qwen2": hf.Qwen2Config, "qwen3": hf.Qwen3Config,
           "gemma3_text": hf.Gemma3TextConfig, "phi3": hf.Phi3Config}[family]
    extra = {"head_dim": 8} if family in ("qwen3", "gemma3_text") else {}
    if family == "gemma3_text":
        extra.update(sliding_window=16, query_pre_attn_scalar=8)
    return cls(**attention, **common, **extra)


def tiny_lm(family: str, seed: int = 0, layers: int = 3) -> LoadedLM:
    """A random decoder of `family`: 3 layers, hidden 32, 4 query heads / 2 KV heads, FFN 64."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(family, layers)).eval()
    # random init leaves some norms at exactly zero or one; perturb so every weight matters
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return LoadedLM(model, tokenizer(), Path("."), family)


def save_tiny(loaded: LoadedLM, directory: Path) -> Path:
    save_lm(loaded, directory)
    return directory
