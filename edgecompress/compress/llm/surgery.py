"""Surgery on a decoder: physically remove layers, attention heads and FFN neurons, and update the
config so that the plain transformers class reloads the result (`from_pretrained`).

Cuts are uniform across layers — every kept layer keeps the same number of query heads, KV heads
and FFN neurons (which ones differs per layer) — because one transformers config describes all
layers, and the exporters downstream (ONNX Runtime GenAI's model builder, llama.cpp's GGUF
converter, litert-torch's generative API) read exactly that config. Weights are
(out_features, in_features); GPT-2's Conv1D stores (in, out).
"""

from __future__ import annotations

import torch
from torch import nn

from edgecompress.compress.llm.families import (
    DECODERS,
    get_path,
    layer_list,
    set_layer_list,
    shape_of,
)

# attributes some attention modules copy from the config at init (Phi-3 keeps its KV count)
_HEAD_ATTRS = ("num_heads", "num_attention_heads", "num_key_value_heads", "num_key_value_groups")


def _set_child(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(get_path(root, parent) if parent else root, name, module)


def _sliced(module: nn.Module, rows: torch.Tensor | None = None,
            cols: torch.Tensor | None = None) -> nn.Module:
    """A copy of Linear / Conv1D `module` keeping output features `rows` and input features
    `cols` (None = all)."""
    if isinstance(module, nn.Linear):
        weight = module.weight.detach()
        weight = weight if rows is None else weight[rows]
        weight = weight if cols is None else weight[:, cols]
        new = nn.Linear(weight.shape[1], weight.shape[0], bias=module.bias is not None)
        bias = module.bias
    else:  # transformers.pytorch_utils.Conv1D: weight (in, out)
        from transformers.pytorch_utils import Conv1D

        weight = module.weight.detach()
        weight = weight if rows is None else weight[:, rows]
        weight = weight if cols is None else weight[cols]
        new = Conv1D(weight.shape[1], weight.shape[0])
        bias = module.bias
    new.weight = nn.Parameter(weight.clone())
    if bias is not None:
        new.bias = nn.Parameter((bias.detach() if rows is None else bias.detach()[rows]).clone())
    return new.to(weight.dtype)


def unit_indices(indices: torch.Tensor, size: int) -> torch.Tensor:
    """Feature indices of whole units (heads of `size` features, or neurons when size 1)."""
    return (indices[:, None] * size + torch.arange(size)).reshape(-1)


def drop_layers(model: nn.Module, keep: list[int]) -> None:
    """Keep decoder layers `keep` (sorted, original numbering); config and cache indices follow."""
    family = DECODERS[model.config.model_type]
    layers = layer_list(model)
    kept = [layers[i] for i in keep]
    for new_index, layer in enumerate(kept):
        for holder in (layer, get_path(layer, family.attention)):
            if hasattr(holder, "layer_idx"):  # the KV cache slot of this layer
                holder.layer_idx = new_index
    set_layer_list(model, kept)
    setattr(model.config, family.layer_count, len(kept))
    layer_types = getattr(model.config, "layer_types", None)
    if isinstance(layer_types, (list, tuple)) and layer_types:  # sliding / full per layer
        model.config.layer_types = [layer_types[i] for i in keep]


def cut_heads(model: nn.Module, keep_queries: list[torch.Tensor],
              keep_kv: list[torch.Tensor]) -> None:
    """Keep query heads `keep_queries[i]` and KV heads `keep_kv[i]` (sorted index tensors of
    the same lengths in every layer) in layer i. Each kept query head must still read a kept KV
    head in its own group position: the caller keeps whole groups or the same number of query
    heads from every group, so that query j reads KV head j // (queries / kv)."""
    shape = shape_of(model.config)
    family = DECODERS[model.config.model_type]
    d = shape.head_dim
    model.config.head_dim = d  # explicit: hidden / heads no longer gives it
    for layer, queries, kv in zip(layer_list(model), keep_queries, keep_kv):
        q_rows, kv_rows = unit_indices(queries, d), unit_indices(kv, d)
        if family.fused == "phi3":  # qkv_proj rows: [Q (heads*d); K (kv*d); V (kv*d)]
            k0, v0 = shape.heads * d, (shape.heads + shape.kv_heads) * d
            rows = torch.cat([q_rows, k0 + kv_rows, v0 + kv_rows])
            _set_child(layer, family.query, _sliced(get_path(layer, family.query), rows=rows))
        else:
            for path, rows in ((family.query, q_rows), (family.key, kv_rows),
                               (family.value, kv_rows)):
                _set_child(layer, path, _sliced(get_path(layer, path), rows=rows))
        _set_child(layer, family.output, _sliced(get_path(layer, family.output), cols=q_rows))
    heads, kv_heads = len(keep_queries[0]), len(keep_kv[0])
    setattr(model.config, family.heads, heads)
    setattr(model.config, family.kv_heads, kv_heads)
    values = {"num_heads": heads, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
              "num_key_value_groups": heads // kv_heads}
    for layer in layer_list(model):
        attention = get_path(layer, family.attention)
        for name in _HEAD_ATTRS:
            if hasattr(attention, name):
                setattr(attention, name, values[name])


def cut_ffn(model: nn.Module, keep: list[torch.Tensor]) -> None:
    """Keep FFN neurons `keep[i]` (sorted, the same count in every layer) in layer i: gate / up
    rows and down-projection columns together."""
    shape = shape_of(model.config)
    family = DECODERS[model.config.model_type]
    for layer, neurons in zip(layer_list(model), keep):
        if family.fused == "phi3":  # gate_up_proj rows: [gate (ffn); up (ffn)]
            rows = torch.cat([neurons, shape.ffn + neurons])
            _set_child(layer, family.gate, _sliced(get_path(layer, family.gate), rows=rows))
        else:
            for path in (family.gate, family.up):
                if path:
                    _set_child(layer, path, _sliced(get_path(layer, path), rows=neurons))
        _set_child(layer, family.down, _sliced(get_path(layer, family.down), cols=neurons))
    setattr(model.config, family.ffn, len(keep[0]))
