"""Run a model and keep what distillation compares: logits (a classifier) or the mean-pooled
sentence embedding (a sentence encoder), per-layer hidden states and attention probabilities.

HF models return them when asked (`output_hidden_states`, `output_attentions`; eager attention,
so the probabilities exist as tensors). The plain encoder has no such outputs: its layer outputs
are captured with forward hooks, and it has no attention probabilities to give.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edgecompress.compress.models.loading import LoadedModel
from edgecompress.compress.models.modules import mean_pool
from edgecompress.targets.inputs import module_inputs


@dataclass(frozen=True)
class Features:
    logits: torch.Tensor | None = None  # (B, C); None for a sentence encoder
    hidden: tuple[torch.Tensor, ...] = ()  # one (B, S, H) per encoder layer, its output
    attentions: tuple[torch.Tensor, ...] = ()  # one (B, heads, S, S) per layer, rows sum to 1
    embedding: torch.Tensor | None = None  # (B, H) mean-pooled; None for a classifier

    def float(self) -> Features:
        """The same features in float32 (after a bf16 autocast forward)."""
        return Features(_float(self.logits), tuple(t.float() for t in self.hidden),
                        tuple(t.float() for t in self.attentions), _float(self.embedding))

    @classmethod
    def of_output(cls, output: torch.Tensor, task: str) -> Features:
        """Features holding a model's plain output (B, C) or (B, H), by its task."""
        return cls(embedding=output) if task == "embedding" else cls(logits=output)


def _float(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.float()


def has_attention_probs(loaded: LoadedModel) -> bool:
    """Whether `forward_features` can return attention probabilities for this model."""
    return loaded.kind == "hf"


def forward_features(loaded: LoadedModel, *inputs: torch.Tensor, hidden: bool = False,
                     attentions: bool = False) -> Features:
    """Logits plus, when asked, every layer's hidden states and attention probabilities.

    `inputs` are the model's, in its order: (input_ids, attention_mask) for text, (pixel_values,)
    for an image model. Raises ValueError when attentions are asked of a model that has none
    (the plain encoder).
    """
    named = dict(zip(module_inputs(loaded.module), inputs))
    attention_mask = named.get("attention_mask")
    if loaded.kind == "hf":
        out = loaded.module.hf(**named, output_hidden_states=hidden,
                               output_attentions=attentions)
        # hidden_states[0] is the embedding output; [i + 1] is the output of layer i
        states = tuple(out.hidden_states[1:]) if hidden else ()
        probs = tuple(out.attentions) if attentions else ()
        if loaded.task == "embedding":  # what MeanPoolingModule returns, (B, H)
            return Features(None, states, probs, mean_pool(out.last_hidden_state, attention_mask))
        return Features(out.logits, states, probs)
    if attentions:
        raise ValueError("the plain encoder does not expose attention probabilities")
    return _plain_features(loaded, *inputs, hidden=hidden)


def _plain_features(loaded: LoadedModel, input_ids, attention_mask, *, hidden: bool) -> Features:
    captured: list[torch.Tensor] = []
    handles = []
    if hidden:
        for layer in loaded.module.layers:
            handles.append(layer.register_forward_hook(
                lambda _module, _inputs, output: captured.append(output)))
    try:
        logits = loaded.module(input_ids, attention_mask)
    finally:
        for handle in handles:
            handle.remove()
    return Features(logits, tuple(captured))
