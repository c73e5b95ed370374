"""Surgery: physically remove heads, FFN neurons, layers and embedding rows.

Every function edits the model in place, replaces weights by smaller copies (no masks), keeps the
config in step with the new shapes, and validates the whole request before touching anything, so
a refused request leaves the model as it was. Linear weights are (out_features, in_features).

HF configs carry one `num_attention_heads` / `intermediate_size` for all layers, so the real
per-layer shapes are written under `edgecompress_shapes` in config.json; `apply_saved_shapes`
rebuilds them before the weights are loaded (see `load_pruned`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from edgecompress.compress.models import (ClassifierModule, LoadedModel, MeanPoolingModule,
                                          check_safetensors, load_model, resolve_model_path)
from edgecompress.compress.prune.arch import Block, blocks, layer_owner, layers, word_embedding
from edgecompress.errors import UserError

SHAPES_KEY = "edgecompress_shapes"


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


def _set_head_count(block: Block, heads: int) -> None:
    # BERT/DistilBERT reshape with -1 heads; the plain encoder's split() reads n_heads.
    for name in ("num_attention_heads", "n_heads"):
        if hasattr(block.attention, name):
            setattr(block.attention, name, heads)
    if hasattr(block.attention, "all_head_size"):
        block.attention.all_head_size = heads * block.head_dim


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
        for linear in (block.query, block.key, block.value):
            _keep_out(linear, rows)
        _keep_in(block.output, rows)
        _set_head_count(block, len(heads))
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


def keep_layers(loaded: LoadedModel, keep: Sequence[int]) -> None:
    """Keep only encoder layers `keep` (in model order); raises UserError if none or unknown."""
    total = len(layers(loaded))
    bad = [i for i in keep if not 0 <= i < total]
    if bad or not keep:
        raise UserError(f"layers to keep must be a non-empty subset of 0..{total - 1}, "
                        f"got {list(keep)}")
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
    """Make the model's config describe its real shapes (layers, vocab, per-layer widths)."""
    shapes = layer_shapes(loaded)
    vocab = word_embedding(loaded).num_embeddings
    if loaded.kind == "plain":
        model = loaded.module
        model.config = dataclasses.replace(
            model.config, heads=tuple(shapes["heads"]), ffn=tuple(shapes["ffn"]),
            vocab_size=vocab, pad_token_id=model.embedding.padding_idx or 0)
        return
    config = loaded.module.hf.config
    layer_key = "n_layers" if config.model_type == "distilbert" else "num_hidden_layers"
    setattr(config, layer_key, len(shapes["heads"]))
    config.vocab_size = vocab
    setattr(config, SHAPES_KEY, shapes)


# ---------------------------------------------------------------- reload


def apply_saved_shapes(hf_model: nn.Module, config_dict: Mapping) -> None:
    """Resize a freshly built (uniform) HF model to the per-layer shapes in `config_dict`.

    Call it after building the model from its config and before loading the weights; a config
    without `edgecompress_shapes` is left alone. Raises ValueError if the layer count differs.
    """
    shapes = config_dict.get(SHAPES_KEY)
    if not shapes:
        return
    view = LoadedModel(ClassifierModule(hf_model), None, "hf", "classification", Path("."), ())
    parts = blocks(view)
    if len(parts) != len(shapes["heads"]) or len(parts) != len(shapes["ffn"]):
        raise ValueError(f"{SHAPES_KEY} lists {len(shapes['heads'])} layers, model has "
                         f"{len(parts)}")
    for block, heads, ffn in zip(parts, shapes["heads"], shapes["ffn"]):
        if heads != block.heads:
            rows = torch.arange(heads * block.head_dim)  # values come from the weights later
            for linear in (block.query, block.key, block.value):
                _keep_out(linear, rows)
            _keep_in(block.output, rows)
            _set_head_count(block, heads)
        if ffn != block.ffn:
            _keep_out(block.ffn_in, torch.arange(ffn))
            _keep_in(block.ffn_out, torch.arange(ffn))


def load_pruned(spec: str | Path, *, task: str | None = None) -> LoadedModel:
    """`load_model`, plus HF checkpoints whose layers have non-uniform (pruned) shapes.

    Raises UserError for anything wrong with the checkpoint.
    """
    path = resolve_model_path(spec)
    config_file = path / "config.json"
    raw = json.loads(config_file.read_text()) if config_file.exists() else {}
    if SHAPES_KEY not in raw:
        return load_model(spec, task=task)
    check_safetensors(path)
    return _load_shaped_hf(path, raw, task)


def _load_shaped_hf(path: Path, raw: dict, task: str | None) -> LoadedModel:
    from safetensors.torch import load_file
    from transformers import (AutoConfig, AutoModel, AutoModelForSequenceClassification,
                              AutoTokenizer)

    archs = raw.get("architectures") or []
    classifier = any(a.endswith("ForSequenceClassification") for a in archs)
    task = task or ("classification" if classifier else "embedding")
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    cls = AutoModelForSequenceClassification if task == "classification" else AutoModel
    hf = cls.from_config(config, attn_implementation="eager")
    apply_saved_shapes(hf, raw)
    state = {}
    for file in sorted(path.glob("*.safetensors")):
        state.update(load_file(str(file)))
    if task == "embedding" and classifier:  # a classifier's encoder: drop prefix and head
        prefix = f"{hf.base_model_prefix}."
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        hf.load_state_dict(state, strict=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (RuntimeError, OSError, ValueError) as err:
        raise UserError(f"cannot load pruned checkpoint {path}: {' '.join(str(err).split())[:300]}"
                        ) from None
    hf.eval()
    if task == "classification":
        labels = tuple(hf.config.id2label[i] for i in range(hf.config.num_labels))
        return LoadedModel(ClassifierModule(hf).eval(), tokenizer, "hf", task, path, labels)
    return LoadedModel(MeanPoolingModule(hf).eval(), tokenizer, "hf", task, path, ())
