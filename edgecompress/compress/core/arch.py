"""One view of every supported encoder: per-layer projections, the layer list, the embedding.

Surgery, scoring and scheduling only see `Block`s, so BERT, RoBERTa, DistilBERT and the plain
PyTorch encoder are pruned by the same code. Linear weights are (out_features, in_features):
removing a head drops rows of Q/K/V and columns of the output projection.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from edgecompress.compress.core.modules import LoadedModel
from edgecompress.errors import UserError

HF_PRUNABLE = ("bert", "roberta", "distilbert")


@dataclass(frozen=True)
class Block:
    """One encoder layer's prunable parts."""

    attention: nn.Module  # the module holding the head-count attributes
    query: nn.Linear  # (heads * head_dim, hidden)
    key: nn.Linear
    value: nn.Linear
    output: nn.Linear  # (hidden, heads * head_dim)
    ffn_in: nn.Linear  # (ffn, hidden)
    ffn_out: nn.Linear  # (hidden, ffn)
    head_dim: int

    @property
    def heads(self) -> int:
        return self.query.out_features // self.head_dim

    @property
    def ffn(self) -> int:
        return self.ffn_in.out_features


def _hf(loaded: LoadedModel):
    hf = loaded.module.hf
    if hf.config.model_type not in HF_PRUNABLE:
        raise UserError(f"pruning supports {', '.join(HF_PRUNABLE)} checkpoints, "
                        f"not {hf.config.model_type!r}")
    return hf, getattr(hf, hf.base_model_prefix, hf)


def layer_owner(loaded: LoadedModel) -> tuple[nn.Module, str]:
    """(module, attribute) holding the ModuleList of encoder layers."""
    if loaded.kind == "plain":
        return loaded.module, "layers"
    hf, base = _hf(loaded)
    if hf.config.model_type == "distilbert":
        return base.transformer, "layer"
    return base.encoder, "layer"


def layers(loaded: LoadedModel) -> nn.ModuleList:
    owner, name = layer_owner(loaded)
    return getattr(owner, name)


def _block(loaded: LoadedModel, layer: nn.Module) -> Block:
    if loaded.kind == "plain":
        a = layer.attention
        return Block(a, a.query, a.key, a.value, a.output, layer.ffn_in, layer.ffn_out,
                     a.head_dim)
    if loaded.module.hf.config.model_type == "distilbert":
        a = layer.attention
        return Block(a, a.q_lin, a.k_lin, a.v_lin, a.out_lin, layer.ffn.lin1, layer.ffn.lin2,
                     a.attention_head_size)
    a = layer.attention.self
    return Block(a, a.query, a.key, a.value, layer.attention.output.dense,
                 layer.intermediate.dense, layer.output.dense, a.attention_head_size)


def set_head_count(block: Block, heads: int) -> None:
    """Tell the attention module its new head count (BERT/DistilBERT reshape with -1 heads;
    the plain encoder's split() reads n_heads)."""
    for name in ("num_attention_heads", "n_heads"):
        if hasattr(block.attention, name):
            setattr(block.attention, name, heads)
    if hasattr(block.attention, "all_head_size"):
        block.attention.all_head_size = heads * block.head_dim


def blocks(loaded: LoadedModel) -> list[Block]:
    """The prunable parts of every encoder layer, in order."""
    return [_block(loaded, layer) for layer in layers(loaded)]


def word_embedding(loaded: LoadedModel) -> nn.Embedding:
    """The token embedding, (vocab, hidden)."""
    if loaded.kind == "plain":
        return loaded.module.embedding
    _, base = _hf(loaded)
    return base.embeddings.word_embeddings


@contextmanager
def skipping(loaded: LoadedModel, index: int):
    """Run the model without layer `index` inside the block (used to score layers)."""
    owner, name = layer_owner(loaded)
    full = getattr(owner, name)
    setattr(owner, name, nn.ModuleList(m for i, m in enumerate(full) if i != index))
    try:
        yield
    finally:
        setattr(owner, name, full)
