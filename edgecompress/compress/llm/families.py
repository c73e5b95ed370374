"""Decoder-only families as data: where each keeps its layers and projections, and the facts
`inspect` shows (read from a config dict, so they come before any weight is loaded).

Linear weights are (out_features, in_features); GPT-2's Conv1D stores (in, out). Adding a
family is an entry in DECODERS plus a tiny-model test (tests/compress/llm/).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from edgecompress.errors import UserError


@dataclass(frozen=True)
class Decoder:
    """Where one HF decoder family keeps its parts; paths are dotted attribute paths from the
    *ForCausalLM module (`layers`) or from one decoder layer (the rest)."""

    name: str  # the config's model_type
    gguf: str  # llama.cpp's `general.architecture` for it ("" = no GGUF route)
    layers: str = "model.layers"
    attention: str = "self_attn"
    query: str = "self_attn.q_proj"
    key: str = "self_attn.k_proj"
    value: str = "self_attn.v_proj"
    output: str = "self_attn.o_proj"
    gate: str = "mlp.gate_proj"
    up: str = "mlp.up_proj"
    down: str = "mlp.down_proj"
    layer_count: str = "num_hidden_layers"  # config keys
    heads: str = "num_attention_heads"
    kv_heads: str = "num_key_value_heads"
    ffn: str = "intermediate_size"
    hidden: str = "hidden_size"
    context: str = "max_position_embeddings"
    fused: str = ""  # "phi3": Q/K/V in one qkv_proj and gate/up in one gate_up_proj
    head_cut: str = ""  # why attention heads cannot be removed ("" = they can)


DECODERS: dict[str, Decoder] = {d.name: d for d in (
    Decoder("llama", gguf="llama"),
    Decoder("qwen2", gguf="qwen2"),
    Decoder("qwen3", gguf="qwen3"),  # per-head-dim q_norm / k_norm: untouched by head cuts
    Decoder("gemma3_text", gguf="gemma3"),
    Decoder("phi3", gguf="phi3", query="self_attn.qkv_proj", key="", value="",
            gate="mlp.gate_up_proj", up="", fused="phi3"),
    # GPT-2: plain GELU MLP (c_fc -> c_proj) in Conv1D layers, no GQA
    Decoder("gpt2", gguf="gpt2", layers="transformer.h", attention="attn", query="attn.c_attn",
            key="", value="", output="attn.c_proj", gate="", up="mlp.c_fc", down="mlp.c_proj",
            layer_count="n_layer", heads="n_head", kv_heads="n_head", ffn="n_inner",
            hidden="n_embd", context="n_positions",
            head_cut="GPT-2 ties its attention width to n_embd (head_dim = n_embd / n_head), so "
                     "a checkpoint with fewer heads does not reload; prune its layers or FFN"),
)}
GGUF_ARCHS = {d.gguf: d.name for d in DECODERS.values() if d.gguf}


def decoder_for(config: dict, where: str) -> Decoder:
    """The family of a decoder config dict; UserError naming the supported ones otherwise."""
    model_type = config.get("model_type")
    if model_type not in DECODERS:
        raise UserError(f"unsupported decoder family {model_type!r} in {where} (supported: "
                        f"{', '.join(DECODERS)})")
    return DECODERS[model_type]


def is_decoder_config(config: dict) -> bool:
    """True for a config of a family this package loads (the encoder loader points here)."""
    return config.get("model_type") in DECODERS


def get_path(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def layer_list(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a *ForCausalLM model, in order."""
    return get_path(model, DECODERS[model.config.model_type].layers)


def set_layer_list(model: nn.Module, layers: list[nn.Module]) -> None:
    parent, _, name = DECODERS[model.config.model_type].layers.rpartition(".")
    setattr(get_path(model, parent), name, nn.ModuleList(layers))


@dataclass(frozen=True)
class Shape:
    """What `inspect` shows of a decoder, from its config alone."""

    family: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    ffn: int
    vocab: int
    context: int
    tied_embeddings: bool

    def to_json(self) -> dict:
        return dict(self.__dict__)


def shape_of(config) -> Shape:
    """The shape facts of a transformers decoder config (`AutoConfig`, no weights needed)."""
    family = DECODERS[config.model_type]
    hidden, heads = getattr(config, family.hidden), getattr(config, family.heads)
    ffn = getattr(config, family.ffn, None) or 4 * hidden  # GPT-2: n_inner None = 4 x n_embd
    return Shape(family=family.name, layers=getattr(config, family.layer_count), heads=heads,
                 kv_heads=getattr(config, family.kv_heads, None) or heads,
                 head_dim=getattr(config, "head_dim", None) or hidden // heads, hidden=hidden,
                 ffn=ffn, vocab=config.vocab_size, context=getattr(config, family.context, 0),
                 tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)))
