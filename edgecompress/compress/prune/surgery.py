"""Surgery: physically remove heads, FFN neurons, layers and embedding rows.

Every function edits the model in place, replaces weights by smaller copies (no masks), keeps the
config in step with the new shapes, and validates the whole request before touching anything, so
a refused request leaves the model as it was. Linear weights are (out_features, in_features).

HF configs carry one `num_attention_heads` / `intermediate_size` for all layers, so the real
per-layer shapes are written under `edgecompress_shapes` in config.json; the loader
(`core.shaped`) rebuilds them before the weights are loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from edgecompress.compress.models.arch import (
    blocks,
    family_of,
    layer_owner,
    layers,
    set_head_count,
    shared_layers,
    word_embedding,
)
from edgecompress.compress.models.modules import LoadedModel
from edgecompress.compress.models.shaped import SHAPES_KEY
from edgecompress.errors import UserError

# ---------------------------------------------------------------- weights


def _keep_out(linear: nn.Linear, index: torch.Tensor) -> None:
    """Keep output rows `index` of `linear`: weight (out, in) -> (len(index), in)."""
    linear.weight = nn.Parameter(linear.weight.detach()[index].clone())
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.detach()[index].clone())
    linear.out_features = len(index)


def _keep_in(linear: nn.Linear, index: torch.Tensor) -> None:
    """Keep input columns `index` of `linear`: weight (out, in) -> (out, len(index))."""
    linear.weight = nn.Parameter(linear.weight.detach()[:, index].clone())
    linear.in_features = len(index)


def _head_rows(kept: Sequence[int], head_dim: int) -> torch.Tensor:
    """Rows of Q/K/V (columns of the output projection) belonging to the kept heads."""
    return torch.tensor([h * head_dim + i for h in kept for i in range(head_dim)],
                        dtype=torch.long)


def _kept(plan: Mapping[int, Sequence[int]], sizes: Sequence[int], what: str) -> dict:
    """Validate {layer: indices to remove}; returns {layer: sorted indices kept}."""
    kept = {}
    for layer, drop in plan.items():
        if not 0 <= layer < len(sizes):
            raise UserError(f"layer {layer} does not exist (the model has {len(sizes)} layers)")
        bad = [i for i in drop if not 0 <= i < sizes[layer]]
        if bad:
            raise UserError(f"layer {layer} has {sizes[layer]} {what}; cannot remove {bad}")
        kept[layer] = [i for i in range(sizes[layer]) if i not in set(drop)]
        if not kept[layer]:
            raise UserError(f"cannot remove all {sizes[layer]} {what} of layer {layer} without "
                            f"dropping the layer (use --keep-layers / --layers)")
    return kept


# ---------------------------------------------------------------- public surgery


def remove_heads(loaded: LoadedModel, plan: Mapping[int, Sequence[int]]) -> None:
    """Remove heads {layer: [head, ...]}; Q/K/V rows and output-projection columns shrink.

    Raises UserError for a missing layer/head or a request that empties a layer.
    """
    parts = blocks(loaded)
    kept = _kept(plan, [b.heads for b in parts], "heads")
    for layer, heads in kept.items():
        block = parts[layer]
        rows = _head_rows(heads, block.head_dim)
        for linear in (block.query, block.key, block.value, *block.head_projections):
            _keep_out(linear, rows)
        _keep_in(block.output, rows)
        set_head_count(block, len(heads))
    sync_config(loaded)


def remove_neurons(loaded: LoadedModel, plan: Mapping[int, Sequence[int]]) -> None:
    """Remove FFN neurons {layer: [neuron, ...]}: rows of ffn_in, columns of ffn_out.

    Raises UserError for a missing layer/neuron or a request that empties a layer.
    """
    parts = blocks(loaded)
    kept = _kept(plan, [b.ffn for b in parts], "FFN neurons")
    for layer, neurons in kept.items():
        index = torch.tensor(neurons, dtype=torch.long)
        _keep_out(parts[layer].ffn_in, index)
        _keep_in(parts[layer].ffn_out, index)
    sync_config(loaded)


def _family(loaded: LoadedModel):
    return family_of(loaded.module.hf)


def _depth(loaded: LoadedModel) -> int:
    """How many times the encoder applies its layers (ALBERT: its shared layer)."""
    return getattr(loaded.module.hf.config, _family(loaded).layer_count)


def keep_layers(loaded: LoadedModel, keep: Sequence[int]) -> None:
    """Keep only encoder layers `keep` (in model order); raises UserError if none or unknown.

    A model that shares one layer across depth (ALBERT) keeps that layer and applies it
    len(keep) times: its layers are identical, so which ones are kept does not matter."""
    shared = shared_layers(loaded)
    total = _depth(loaded) if shared else len(layers(loaded))
    bad = [i for i in keep if not 0 <= i < total]
    if bad or not keep:
        raise UserError(f"layers to keep must be a non-empty subset of 0..{total - 1}, "
                        f"got {list(keep)}")
    if shared:
        setattr(loaded.module.hf.config, _family(loaded).layer_count, len(set(keep)))
        return
    owner, name = layer_owner(loaded)
    full = getattr(owner, name)
    setattr(owner, name, nn.ModuleList(full[i] for i in sorted(set(keep))))
    sync_config(loaded)


def keep_embedding_rows(loaded: LoadedModel, token_ids: Sequence[int]) -> None:
    """Keep embedding rows `token_ids` (old ids, ascending); old id token_ids[k] becomes k.

    The pad id is remapped; raises UserError if it is not kept.
    """
    emb = word_embedding(loaded)
    index = torch.tensor(sorted(set(token_ids)), dtype=torch.long)
    pad = emb.padding_idx
    new_pad = None
    if pad is not None:
        hits = (index == pad).nonzero()
        if len(hits) == 0:
            raise UserError(f"the pad token id {pad} must stay in the vocabulary")
        new_pad = int(hits[0, 0])
    emb.weight = nn.Parameter(emb.weight.detach()[index].clone())  # (kept, hidden)
    emb.num_embeddings, emb.padding_idx = len(index), new_pad
    if loaded.kind == "hf":
        loaded.module.hf.config.pad_token_id = new_pad
    sync_config(loaded)


def layer_shapes(loaded: LoadedModel) -> dict[str, list[int]]:
    """{"heads": [per layer], "ffn": [per layer]} read from the weights."""
    parts = blocks(loaded)
    return {"heads": [b.heads for b in parts], "ffn": [b.ffn for b in parts]}


def sync_config(loaded: LoadedModel) -> None:
    """Make the model's config describe its real shapes (layers, vocab, per-layer widths).
    A family whose layers cannot be cut (MobileBERT, ModernBERT) can still lose vocabulary
    rows: only its vocabulary size changes."""
    # None for an image model: its patch embedding (a Conv2d) has no vocabulary
    vocab = getattr(word_embedding(loaded), "num_embeddings", None)
    if loaded.kind == "hf" and family_of(loaded.module.hf).prunable:
        loaded.module.hf.config.vocab_size = vocab
        return
    shapes = layer_shapes(loaded)
    if loaded.kind == "plain":
        model = loaded.module
        model.config = dataclasses.replace(
            model.config, heads=tuple(shapes["heads"]), ffn=tuple(shapes["ffn"]),
            vocab_size=vocab, pad_token_id=model.embedding.padding_idx or 0)
        return
    config = loaded.module.hf.config
    if not shared_layers(loaded):  # a shared layer's repetitions are not its block count
        setattr(config, _family(loaded).layer_count, len(shapes["heads"]))
    if vocab is not None:
        config.vocab_size = vocab
    setattr(config, SHAPES_KEY, shapes)
