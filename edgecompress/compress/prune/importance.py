"""Scoring: how much each head, FFN neuron and layer matters, measured on real sentences.

- "gradient" (default; Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): a gate of
  ones multiplies every head's context vector and every FFN neuron's activation; the importance
  of a unit is |dL/d gate| summed over batches, with L the cross-entropy against the data's labels
  (or the model's own argmax, the "teacher" labels, when the data has none). For an FFN neuron
  dL/d gate = sum over tokens of activation x gradient: first-order Taylor (gradient x activation).
- "magnitude": no data; a head scores the norm of its Q/K/V rows and output columns, a neuron
  ||ffn_in row|| * ||ffn_out column||.
- Layers: the increase in loss when the layer is skipped.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.arch import Block, blocks, layers, skipping
from edgecompress.compress.models.loading import LoadedModel
from edgecompress.compress.training.train import as_tensors
from edgecompress.errors import UserError

METHODS = ("gradient", "magnitude")


@dataclass(frozen=True)
class Importance:
    """Per-layer scores: heads[l][h], ffn[l][n]; higher means more important."""

    heads: tuple[tuple[float, ...], ...]
    ffn: tuple[tuple[float, ...], ...]
    method: str
    samples: int
    label_source: str  # "data" | "teacher" | "none"


@dataclass(frozen=True)
class Samples:
    """Sentences to score on; labels None means: use the model's own predictions."""

    texts: tuple[str, ...]
    labels: tuple[int, ...] | None
    batch_size: int = 16
    max_length: int = 128


@contextmanager
def gates(parts: list[Block], head_gate: list[torch.Tensor] | None = None,
          ffn_gate: list[torch.Tensor] | None = None):
    """Multiply each head's context / each FFN activation by a gate while inside the block.

    Gates are (heads,) and (ffn,) tensors per layer; a 0 masks that head or neuron, exactly what
    removing it does. Hooks sit on the inputs of the output projection and of ffn_out.
    """
    handles = []
    for i, block in enumerate(parts):
        if head_gate is not None:
            handles.append(block.output.register_forward_pre_hook(
                _head_hook(head_gate[i], block.head_dim)))
        if ffn_gate is not None:
            handles.append(block.ffn_out.register_forward_pre_hook(
                lambda _m, args, g=ffn_gate[i]: (args[0] * g,)))  # (B, S, ffn) * (ffn,)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _head_hook(gate: torch.Tensor, head_dim: int):
    def hook(_module, args):
        context = args[0]  # (B, S, heads * head_dim)
        shape = context.shape
        per_head = context.view(*shape[:-1], -1, head_dim) * gate[:, None]  # (B, S, H, hd)
        return (per_head.view(shape),)
    return hook


def _batches(loaded: LoadedModel, samples: Samples):
    """Yield (model inputs as positional tensors, labels or None) torch batches."""
    for start in range(0, len(samples.texts), samples.batch_size):
        chunk = samples.texts[start:start + samples.batch_size]
        enc = tokenize(loaded.tokenizer, chunk, samples.max_length)
        labels = None
        if samples.labels is not None:
            labels = torch.tensor(samples.labels[start:start + samples.batch_size])
        yield as_tensors(enc, loaded.module), labels


def _loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    # Teacher labels: the model's own argmax, as Michel et al. do for unlabelled data.
    target = labels if labels is not None else logits.detach().argmax(-1)
    return nn.functional.cross_entropy(logits, target, reduction="sum")


@contextmanager
def _frozen(module: nn.Module):
    """Eval mode, no parameter gradients (only the gates need them); restored afterwards."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    training = module.training
    module.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        module.train(training)


def gradient_importance(loaded: LoadedModel, samples: Samples) -> Importance:
    """|dL/d gate| per head and FFN neuron, accumulated over `samples` (see module doc).

    Raises UserError for a model without logits (a sentence encoder) or no samples.
    """
    _needs_classifier(loaded, samples)
    parts = blocks(loaded)
    head_gate = [torch.ones(b.heads, requires_grad=True) for b in parts]
    ffn_gate = [torch.ones(b.ffn, requires_grad=True) for b in parts]
    head_score = [torch.zeros(b.heads) for b in parts]
    ffn_score = [torch.zeros(b.ffn) for b in parts]
    with _frozen(loaded.module), gates(parts, head_gate, ffn_gate), torch.enable_grad():
        for inputs, labels in _batches(loaded, samples):
            _loss(loaded.module(*inputs), labels).backward()
            for gate, score in zip(head_gate + ffn_gate, head_score + ffn_score):
                score += gate.grad.abs()  # |dL/dgate| per batch, as Michel et al.
                gate.grad = None
    source = "data" if samples.labels is not None else "teacher"
    return Importance(_tuples(head_score), _tuples(ffn_score), "gradient",
                      len(samples.texts), source)


def magnitude_importance(loaded: LoadedModel) -> Importance:
    """Weight-norm scores; needs no data."""
    heads, ffn = [], []
    with torch.no_grad():
        for b in blocks(loaded):
            # per head: squared norms of its Q/K/V rows and its output columns, (heads,)
            qkv = sum(lin.weight.view(b.heads, -1).pow(2).sum(1)
                      for lin in (b.query, b.key, b.value))
            out = b.output.weight.view(b.output.out_features, b.heads, -1).pow(2).sum((0, 2))
            heads.append((qkv + out).sqrt())
            ffn.append(b.ffn_in.weight.norm(dim=1) * b.ffn_out.weight.norm(dim=0))  # (ffn,)
    return Importance(_tuples(heads), _tuples(ffn), "magnitude", 0, "none")


def layer_importance(loaded: LoadedModel, samples: Samples) -> tuple[float, ...]:
    """Per layer: mean loss with the layer skipped minus the full model's mean loss."""
    _needs_classifier(loaded, samples)
    base = _mean_loss(loaded, samples)
    scores = []
    for index in range(len(layers(loaded))):
        with skipping(loaded, index):
            scores.append(_mean_loss(loaded, samples) - base)
    return tuple(scores)


def _mean_loss(loaded: LoadedModel, samples: Samples) -> float:
    total = 0.0
    with torch.no_grad():
        for inputs, labels in _batches(loaded, samples):
            total += float(_loss(loaded.module.eval()(*inputs), labels))
    return total / len(samples.texts)


def _needs_classifier(loaded: LoadedModel, samples: Samples) -> None:
    if loaded.task != "classification":
        raise UserError("gradient importance needs a classifier (logits); use "
                        "--importance magnitude for a sentence encoder")
    if not samples.texts:
        raise UserError("no samples to measure importance on")


def _tuples(scores: list[torch.Tensor]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(x) for x in s) for s in scores)
