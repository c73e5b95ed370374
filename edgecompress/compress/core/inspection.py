"""What a model is, read from its weights: layers, heads and FFN width per layer, parameter counts.

Pruning makes layers non-uniform, so head counts come from the projection shapes (rows of the query
projection / head size), never from the config's uniform `num_attention_heads`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from edgecompress.compress.core.models import LoadedModel


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

    def to_json(self) -> dict:
        data = asdict(self)
        data["num_layers"] = len(self.layers)
        return data


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _hf_parts(hf: nn.Module) -> tuple[nn.Module, nn.Module, list[tuple[nn.Linear, nn.Linear]]]:
    """(embeddings, encoder, [(query, ffn_in) per layer]) for BERT / RoBERTa / DistilBERT."""
    model_type = hf.config.model_type
    base = getattr(hf, hf.base_model_prefix, hf)
    if model_type == "distilbert":
        blocks = base.transformer.layer
        pairs = [(b.attention.q_lin, b.ffn.lin1) for b in blocks]
        return base.embeddings, base.transformer, pairs
    blocks = base.encoder.layer
    pairs = [(b.attention.self.query, b.intermediate.dense) for b in blocks]
    return base.embeddings, base.encoder, pairs


def _hf_info(loaded: LoadedModel) -> tuple[str, int, int, nn.Module, nn.Module, list[LayerInfo]]:
    hf = loaded.module.hf
    config = hf.config
    embeddings, encoder, pairs = _hf_parts(hf)
    head_dim = config.hidden_size // config.num_attention_heads
    layers = [LayerInfo(q.out_features // head_dim, head_dim, f.out_features) for q, f in pairs]
    arch = type(hf).__name__
    return arch, config.hidden_size, config.vocab_size, embeddings, encoder, layers


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
    return ModelInfo(architecture=arch, kind=loaded.kind, task=loaded.task, hidden=hidden,
                     vocab_size=vocab, layers=tuple(layers), params=total, embedding_params=emb,
                     encoder_params=enc, head_params=total - emb - enc,
                     file_bytes=weights_bytes(loaded.path))


def weights_bytes(path: Path) -> int:
    """Bytes of the safetensors weights in a checkpoint directory (0 if none)."""
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.glob("*.safetensors"))
