"""Reload checkpoints whose layers have their own shapes (pruned heads / FFN widths).

HF configs carry one `num_attention_heads` / `intermediate_size` for all layers, so the real
per-layer shapes are written under `edgecompress_shapes` in config.json (by prune's surgery);
`apply_saved_shapes` rebuilds them on a freshly built model before its weights are loaded.
Linear weights are (out_features, in_features).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from edgecompress.compress.models.arch import blocks, set_head_count
from edgecompress.compress.models.modules import (
    ClassifierModule,
    LoadedModel,
    MeanPoolingModule,
    one_line,
)
from edgecompress.compress.models.vision import (
    ImageClassifierModule,
    ImageProcessor,
    is_vision_config,
)
from edgecompress.errors import UserError

SHAPES_KEY = "edgecompress_shapes"


def _inputs_processor(path: Path, raw: dict):
    """The tokenizer of a text checkpoint, the image processor of a ViT / DeiT one."""
    if is_vision_config(raw):
        return ImageProcessor.from_dir(path, raw.get("num_channels"))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def _resize(linear: nn.Linear, out_features: int | None = None,
            in_features: int | None = None) -> None:
    """Give `linear` a new (out, in) shape in place; values come from the checkpoint later."""
    out_features, in_features = (out_features or linear.out_features,
                                 in_features or linear.in_features)
    linear.weight = nn.Parameter(torch.empty(out_features, in_features))
    if linear.bias is not None:
        linear.bias = nn.Parameter(torch.empty(out_features))
    linear.out_features, linear.in_features = out_features, in_features


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
            width = heads * block.head_dim
            for linear in (block.query, block.key, block.value, *block.head_projections):
                _resize(linear, out_features=width)
            _resize(block.output, in_features=width)
            set_head_count(block, heads)
        if ffn != block.ffn:
            _resize(block.ffn_in, out_features=ffn)
            _resize(block.ffn_out, in_features=ffn)


def _model_names(hf: nn.Module) -> dict[str, str]:
    """{checkpoint key: model key}: transformers 5 renames ViT / DeiT weights when it saves
    (`vit.layers.0.attention.q_proj` is written as `vit.encoder.layer.0.attention.attention.
    query`); its own reverse mapping, matched by tensor identity, undoes that."""
    from transformers.core_model_loading import revert_weight_conversion

    state = hf.state_dict()
    model_key = {id(tensor): key for key, tensor in state.items()}
    saved = revert_weight_conversion(hf, dict(state))
    return {key: model_key[id(t)] for key, t in saved.items() if id(t) in model_key}


def load_shaped(path: Path, raw: dict, task: str | None) -> LoadedModel:
    """Build the HF model from `raw` (its config.json), resize it, load its safetensors."""
    from safetensors.torch import load_file
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
    )

    archs = raw.get("architectures") or []
    vision = is_vision_config(raw)
    classifier = vision or any(a.endswith("ForSequenceClassification") for a in archs)
    task = task or ("classification" if classifier else "embedding")
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    cls = AutoModelForSequenceClassification if task == "classification" else AutoModel
    hf = (AutoModelForImageClassification if vision else cls).from_config(
        config, attn_implementation="eager")
    try:
        apply_saved_shapes(hf, raw)
    except ValueError as err:
        raise UserError(f"cannot load pruned checkpoint {path}: {err}") from None
    state = {}
    for file in sorted(path.glob("*.safetensors")):
        state.update(load_file(str(file)))
    if vision:  # saved under transformers' checkpoint names (vit.encoder.layer.0...)
        names = _model_names(hf)
        state = {names.get(key, key): value for key, value in state.items()}
    if task == "embedding" and classifier:  # a classifier's encoder: drop prefix and head
        prefix = f"{hf.base_model_prefix}."
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        hf.load_state_dict(state, strict=True)
        tokenizer = _inputs_processor(path, raw)
    except (RuntimeError, OSError, ValueError) as err:
        raise UserError(f"cannot load pruned checkpoint {path}: {one_line(err)}") from None
    hf.eval()
    if task == "classification":
        labels = tuple(hf.config.id2label[i] for i in range(hf.config.num_labels))
        module = ImageClassifierModule(hf) if vision else ClassifierModule(hf)
        return LoadedModel(module.eval(), tokenizer, "hf", task, path, labels)
    return LoadedModel(MeanPoolingModule(hf).eval(), tokenizer, "hf", task, path, ())
