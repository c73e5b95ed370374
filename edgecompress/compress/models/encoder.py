"""A plain-PyTorch Transformer encoder classifier of the textbook shape.

Token embedding + sinusoidal positional encoding, post-LayerNorm blocks of multi-head
self-attention and a GELU feed-forward, mean pooling over real tokens, a linear head. Every layer
keeps its own head count and FFN width so that pruning can make layers non-uniform; the saved
config records them, and the weights are the single source of truth for the shapes.

Saved as `model.safetensors` + `encoder_config.json` (+ the tokenizer files it is paired with).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

CONFIG_NAME = "encoder_config.json"
WEIGHTS_NAME = "model.safetensors"

# Additive mask value for padding. Bounded (not -inf, not -1e4) so that full-integer quantization
# can still represent it: docs/design measured 60.5 % agreement with -1e4 and 99.6 % with -100.
MASK_VALUE = -100.0


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    d_model: int = 256
    head_dim: int = 32
    heads: tuple[int, ...] = (8, 8, 8, 8)
    ffn: tuple[int, ...] = (1024, 1024, 1024, 1024)
    max_len: int = 256
    num_labels: int = 2
    pad_token_id: int = 0
    dropout: float = 0.1
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "head_dim", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.heads:
            raise ValueError("the encoder needs at least one layer")
        if len(self.heads) != len(self.ffn):
            raise ValueError(f"heads ({len(self.heads)} layers) and ffn ({len(self.ffn)}) differ")
        if any(h < 1 for h in self.heads) or any(f < 1 for f in self.ffn):
            raise ValueError("every layer needs at least one head and one FFN neuron")
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {self.num_labels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def uniform(cls, vocab_size: int, *, d_model: int = 256, n_heads: int = 8, ffn: int = 1024,
                n_layers: int = 4, **kwargs) -> EncoderConfig:
        for name, value in (("d_model", d_model), ("heads", n_heads), ("ffn", ffn),
                            ("layers", n_layers)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {n_heads} heads")
        return cls(vocab_size=vocab_size, d_model=d_model, head_dim=d_model // n_heads,
                   heads=(n_heads,) * n_layers, ffn=(ffn,) * n_layers, **kwargs)

    @property
    def num_layers(self) -> int:
        return len(self.heads)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> EncoderConfig:
        if not isinstance(data, dict):
            raise ValueError(f"encoder config must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown encoder config keys: {sorted(unknown)}")
        data = dict(data)
        for key in ("heads", "ffn", "labels"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model) fixed positional encoding of Vaswani et al."""
    position = torch.arange(max_len).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return table


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        inner = n_heads * head_dim
        self.query = nn.Linear(d_model, inner)
        self.key = nn.Linear(d_model, inner)
        self.value = nn.Linear(d_model, inner)
        self.output = nn.Linear(inner, d_model)
        self.dropout = nn.Dropout(dropout)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        # (batch, seq, heads * head_dim) -> (batch, heads, seq, head_dim)
        return x.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (batch, heads, seq, seq)
        weights = self.dropout(torch.softmax(scores + additive_mask, dim=-1))
        context = (weights @ v).transpose(1, 2)  # (batch, seq, heads, head_dim)
        return self.output(context.reshape(x.shape[0], x.shape[1], -1))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, ffn: int, dropout: float):
        super().__init__()
        self.attention = SelfAttention(d_model, n_heads, head_dim, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn_in = nn.Linear(d_model, ffn)
        self.ffn_out = nn.Linear(ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, additive_mask)))
        hidden = nn.functional.gelu(self.ffn_in(x))
        return self.norm2(x + self.dropout(self.ffn_out(hidden)))


class EncoderClassifier(nn.Module):
    """forward(input_ids (B, S), attention_mask (B, S)) -> logits (B, num_labels)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model,
                                      padding_idx=config.pad_token_id)
        self.register_buffer("positions", sinusoidal_positions(config.max_len, config.d_model),
                             persistent=False)
        self.layers = nn.ModuleList(
            EncoderLayer(config.d_model, h, config.head_dim, f, config.dropout)
            for h, f in zip(config.heads, config.ffn)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        x = self.embedding(input_ids) * math.sqrt(self.config.d_model) + self.positions[:seq]
        x = self.dropout(x)
        mask = attention_mask.to(x.dtype)  # (batch, seq), 1 for real tokens
        additive = ((1.0 - mask) * MASK_VALUE)[:, None, None, :]  # (batch, 1, 1, seq)
        for layer in self.layers:
            x = layer(x, additive)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))


def save_encoder(model: EncoderClassifier, directory: Path) -> None:
    """Write weights (safetensors) and config JSON into `directory` (which must exist)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME))
    (directory / CONFIG_NAME).write_text(json.dumps(model.config.to_json(), indent=2))


def load_encoder(directory: Path) -> EncoderClassifier:
    """Build the encoder from its config and load weights from safetensors (no pickle)."""
    from safetensors.torch import load_file

    config = EncoderConfig.from_json(json.loads((directory / CONFIG_NAME).read_text()))
    model = EncoderClassifier(config)
    model.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
    return model.eval()
