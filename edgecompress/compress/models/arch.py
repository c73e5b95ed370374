"""Architecture support as data: one small adapter per encoder family, and one view of a model
built from it — per-layer projections (`Block`), the layer list, the token embedding.

Surgery, scoring and scheduling only see `Block`s, so every family whose adapter names its
parts is pruned by the same code. Linear weights are (out_features, in_features): removing a
head drops rows of Q/K/V and columns of the output projection. Adding a family is an entry in
FAMILIES plus a tiny-model test (tests/compress/models/test_arch.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from edgecompress.compress.models.modules import LoadedModel
from edgecompress.errors import UserError


@dataclass(frozen=True)
class Family:
    """Where one HF family keeps its parts. Paths are dotted attribute paths: `layers` and
    `embedding` from the base model (`model.<base_model_prefix>`), the rest from one layer."""

    name: str  # the config's model_type
    layers: str = "encoder.layer"
    attention: str = "attention.self"  # the module holding the head-count attributes
    query: str = "attention.self.query"
    key: str = "attention.self.key"
    value: str = "attention.self.value"
    output: str = "attention.output.dense"
    ffn_in: str = "intermediate.dense"
    ffn_out: str = "output.dense"
    embedding: str = "embeddings.word_embeddings"
    head_dim: str = "attention_head_size"  # attribute of `attention`
    layer_count: str = "num_hidden_layers"  # config key
    shared_layers: bool = False  # ALBERT: one layer applied `layer_count` times
    # more per-head projections on `attention`, cut with Q/K/V when present (DeBERTa's
    # position projections when share_att_key is off)
    head_projections: tuple[str, ...] = ()
    prunable: str = ""  # why heads / FFN cannot be cut ("" = they can)
    quirks: str = ""


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("bert"),
    Family("roberta", quirks="byte-level BPE tokenizer"),
    Family("xlm-roberta", quirks="SentencePiece (Unigram) tokenizer, 250 k vocabulary"),
    Family("electra", quirks="factorised embedding (embeddings_project) when embedding_size "
                             "differs from hidden_size"),
    Family("distilbert", layers="transformer.layer", attention="attention",
           query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
           output="attention.out_lin", ffn_in="ffn.lin1", ffn_out="ffn.lin2",
           layer_count="n_layers"),
    Family("deberta-v2", query="attention.self.query_proj", key="attention.self.key_proj",
           value="attention.self.value_proj", head_projections=("pos_key_proj", "pos_query_proj"),
           quirks="disentangled relative-position attention (position projections shared with "
                  "key/query when share_att_key)"),
    Family("albert", layers="encoder.albert_layer_groups.0.albert_layers", attention="attention",
           query="attention.query", key="attention.key", value="attention.value",
           output="attention.dense", ffn_in="ffn", ffn_out="ffn_output", shared_layers=True,
           quirks="one layer shared across depth (pruning it prunes every use; dropping layers "
                  "means fewer repetitions); factorised embedding"),
    # Vision Transformers: patch embedding (a Conv2d) instead of a token embedding
    Family("vit", layers="layers", attention="attention", query="attention.q_proj",
           key="attention.k_proj", value="attention.v_proj", output="attention.o_proj",
           ffn_in="mlp.fc1", ffn_out="mlp.fc2", embedding="embeddings.patch_embeddings.projection",
           head_dim="head_dim", quirks="image patches in, [CLS] token out; no vocabulary"),
    Family("deit", layers="layers", attention="attention", query="attention.q_proj",
           key="attention.k_proj", value="attention.v_proj", output="attention.o_proj",
           ffn_in="mlp.fc1", ffn_out="mlp.fc2", embedding="embeddings.patch_embeddings.projection",
           head_dim="head_dim", quirks="ViT plus a distillation token; the classifier head of "
                                      "DeiTForImageClassification reads [CLS]"),
    Family("mobilebert", prunable="MobileBERT's bottlenecks and stacked FFNs cannot be cut by "
                                  "the shared head/FFN surgery yet",
           quirks="bottleneck layers and four stacked FFNs per layer"),
    Family("modernbert", layers="layers", embedding="embeddings.tok_embeddings",
           prunable="ModernBERT fuses Q/K/V into one Wqkv and gates its FFN (GLU); the shared "
                    "surgery cannot cut them yet",
           quirks="alternating local / global attention, rotary positions, fused Wqkv, GLU FFN",
           layer_count="num_hidden_layers"),
)}


VISION_FAMILIES = ("vit", "deit")  # image classifiers (compress/models/vision.py); the rest: tokens


def family_of(hf: nn.Module) -> Family:
    """The adapter of an HF model; UserError listing the known families otherwise."""
    name = hf.config.model_type
    if name not in FAMILIES:
        raise UserError(f"unsupported architecture {name!r} (supported: "
                        f"{', '.join(FAMILIES)})")
    return FAMILIES[name]


def _get(root: nn.Module, path: str):
    for part in filter(None, path.split(".")):  # "" is `root` itself (ViT's `layers`)
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


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
    head_projections: tuple[nn.Linear, ...] = ()  # more (heads * head_dim, hidden) projections

    @property
    def heads(self) -> int:
        return self.query.out_features // self.head_dim

    @property
    def ffn(self) -> int:
        return self.ffn_in.out_features


def _hf(loaded: LoadedModel):
    """(hf model, base model, family), refusing families whose layers cannot be cut."""
    hf = loaded.module.hf
    family = family_of(hf)
    if family.prunable:
        raise UserError(f"cannot prune {family.name}: {family.prunable}")
    return hf, getattr(hf, hf.base_model_prefix, hf), family


def layer_owner(loaded: LoadedModel) -> tuple[nn.Module, str]:
    """(module, attribute) holding the ModuleList of encoder layers."""
    if loaded.kind == "plain":
        return loaded.module, "layers"
    _, base, family = _hf(loaded)
    owner, _, attr = family.layers.rpartition(".")
    return _get(base, owner), attr


def layers(loaded: LoadedModel) -> nn.ModuleList:
    """The encoder layers, read-only: every family has them, even those that cannot be cut
    (distillation maps a MobileBERT / ModernBERT student's layers onto its teacher's)."""
    if loaded.kind == "plain":
        return loaded.module.layers
    hf = loaded.module.hf
    return _get(getattr(hf, hf.base_model_prefix, hf), family_of(hf).layers)


def _block(loaded: LoadedModel, layer: nn.Module) -> Block:
    if loaded.kind == "plain":
        a = layer.attention
        return Block(a, a.query, a.key, a.value, a.output, layer.ffn_in, layer.ffn_out,
                     a.head_dim)
    family = family_of(loaded.module.hf)
    attention = _get(layer, family.attention)
    parts = [_get(layer, getattr(family, name))
             for name in ("query", "key", "value", "output", "ffn_in", "ffn_out")]
    extra = tuple(getattr(attention, name) for name in family.head_projections
                  if isinstance(getattr(attention, name, None), nn.Linear))
    return Block(attention, *parts, getattr(attention, family.head_dim), extra)


def blocks(loaded: LoadedModel) -> list[Block]:
    """The prunable parts of every encoder layer, in order (one shared block for ALBERT);
    UserError for a family whose layers cannot be cut."""
    if loaded.kind == "hf":
        _hf(loaded)
    return [_block(loaded, layer) for layer in layers(loaded)]


def shared_layers(loaded: LoadedModel) -> bool:
    return loaded.kind == "hf" and family_of(loaded.module.hf).shared_layers


def set_head_count(block: Block, heads: int) -> None:
    """Tell the attention module its new head count (BERT/DistilBERT reshape with -1 heads;
    the plain encoder's split() reads n_heads)."""
    for name in ("num_attention_heads", "n_heads"):
        if hasattr(block.attention, name):
            setattr(block.attention, name, heads)
    if hasattr(block.attention, "all_head_size"):
        block.attention.all_head_size = heads * block.head_dim


def word_embedding(loaded: LoadedModel) -> nn.Embedding:
    """The token embedding, (vocab, embedding width)."""
    if loaded.kind == "plain":
        return loaded.module.embedding
    hf = loaded.module.hf
    return _get(getattr(hf, hf.base_model_prefix, hf), family_of(hf).embedding)


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
