"""Run a classifier and keep what distillation compares: logits, per-layer hidden states and
attention probabilities.

HF models return them when asked (`output_hidden_states`, `output_attentions`; eager attention,
so the probabilities exist as tensors). The plain encoder has no such outputs: its layer outputs
are captured with forward hooks, and it has no attention probabilities to give.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edgecompress.compress.core.models import LoadedModel


@dataclass(frozen=True)
class Features:
    logits: torch.Tensor  # (B, C)
    hidden: tuple[torch.Tensor, ...] = ()  # one (B, S, H) per encoder layer, its output
    attentions: tuple[torch.Tensor, ...] = ()  # one (B, heads, S, S) per layer, rows sum to 1

    def float(self) -> Features:
        """The same features in float32 (after a bf16 autocast forward)."""
        return Features(self.logits.float(), tuple(t.float() for t in self.hidden),
                        tuple(t.float() for t in self.attentions))


def has_attention_probs(loaded: LoadedModel) -> bool:
    """Whether `forward_features` can return attention probabilities for this model."""
    return loaded.kind == "hf"


def forward_features(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     *, hidden: bool = False, attentions: bool = False) -> Features:
    """Logits plus, when asked, every layer's hidden states and attention probabilities.

    Raises ValueError when attentions are asked of a model that has none (the plain encoder).
    """
    if loaded.kind == "hf":
        out = loaded.module.hf(input_ids=input_ids, attention_mask=attention_mask,
                               output_hidden_states=hidden, output_attentions=attentions)
        # hidden_states[0] is the embedding output; [i + 1] is the output of layer i
        states = tuple(out.hidden_states[1:]) if hidden else ()
        return Features(out.logits, states, tuple(out.attentions) if attentions else ())
    if attentions:
        raise ValueError("the plain encoder does not expose attention probabilities")
    return _plain_features(loaded, input_ids, attention_mask, hidden)


def _plain_features(loaded: LoadedModel, input_ids, attention_mask, hidden: bool) -> Features:
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
