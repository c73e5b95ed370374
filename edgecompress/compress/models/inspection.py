"""What a model is, read from its weights: layers, heads and FFN width per layer, parameter counts.

Pruning makes layers non-uniform, so head counts come from the projection shapes (rows of the query
projection / head size), never from the config's uniform `num_attention_heads`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from edgecompress.compress.models.loading import LoadedModel


@dataclass(frozen=True)
class LayerInfo:
    heads: int
    head_dim: int
    ffn: int


@dataclass(frozen=True)
class ModelInfo:
    architecture: str
    kind: str
    task: str
    hidden: int
    vocab_size: int
    layers: tuple[LayerInfo, ...]
    params: int
    embedding_params: int
    encoder_params: int
    head_params: int
    file_bytes: int
    family: str = "plain"  # the adapter (compress/models/arch.FAMILIES) the model is read through
    stages: tuple[str, ...] = ()  # what applies to it
    notes: tuple[str, ...] = ()  # the family's quirks and what cannot apply, and why

    def to_json(self) -> dict:
        data = asdict(self)
        data["num_layers"] = len(self.layers)
        return data


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _hf_info(loaded: LoadedModel) -> tuple[str, int, int, nn.Module, nn.Module, list[LayerInfo]]:
    """Per-layer heads / FFN width from the weights (via the family adapter); families whose
    layers cannot be cut yet report their config's uniform shape."""
    from edgecompress.compress.models.arch import _get, blocks, family_of

    hf = loaded.module.hf
    config, family = hf.config, family_of(hf)
    base = getattr(hf, hf.base_model_prefix, hf)
    encoder = _get(base, family.layers.split(".")[0])
    depth = getattr(config, family.layer_count)
    if family.prunable:
        head_dim = config.hidden_size // config.num_attention_heads
        layers = [LayerInfo(config.num_attention_heads, head_dim, config.intermediate_size)
                  for _ in range(depth)]
    else:
        layers = [LayerInfo(b.heads, b.head_dim, b.ffn) for b in blocks(loaded)]
        layers = layers * depth if family.shared_layers else layers
    return (type(hf).__name__, config.hidden_size, config.vocab_size, base.embeddings, encoder,
            layers)


def _plain_info(loaded: LoadedModel):
    model = loaded.module
    layers = [LayerInfo(layer.attention.n_heads, layer.attention.head_dim,
                        layer.ffn_in.out_features) for layer in model.layers]
    arch = "EncoderClassifier (plain PyTorch)"
    return (arch, model.config.d_model, model.embedding.num_embeddings, model.embedding,
            model.layers, layers)


def inspect_model(loaded: LoadedModel) -> ModelInfo:
    """Summarise a loaded model; parameter groups sum to the total."""
    info = _plain_info(loaded) if loaded.kind == "plain" else _hf_info(loaded)
    arch, hidden, vocab, embeddings, encoder, layers = info
    total = _count(loaded.module)
    emb, enc = _count(embeddings), _count(encoder)
    family, stages, notes = _applicability(loaded)
    return ModelInfo(architecture=arch, kind=loaded.kind, task=loaded.task, hidden=hidden,
                     vocab_size=vocab, layers=tuple(layers), params=total, embedding_params=emb,
                     encoder_params=enc, head_params=total - emb - enc,
                     file_bytes=weights_bytes(loaded.path), family=family, stages=stages,
                     notes=notes)


ALL_STAGES = ("finetune", "prune heads/ffn", "prune layers", "vocabulary prune", "distill",
              "quantize", "export onnx", "export tflite")


def _applicability(loaded: LoadedModel) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(family, stages that apply, notes) as the family's adapter says."""
    if loaded.kind == "plain":
        return "plain", ALL_STAGES, ()
    from edgecompress.compress.models.arch import family_of

    family = family_of(loaded.module.hf)
    if not family.prunable:
        return family.name, ALL_STAGES, tuple(filter(None, (family.quirks,)))
    cut = ("prune heads/ffn", "prune layers")
    return (family.name, tuple(s for s in ALL_STAGES if s not in cut),
            tuple(filter(None, (family.quirks, f"pruning: {family.prunable}"))))


def weights_bytes(path: Path) -> int:
    """Bytes of the safetensors weights in a checkpoint directory (0 if none)."""
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.glob("*.safetensors"))
