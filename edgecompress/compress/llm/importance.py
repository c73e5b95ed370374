"""Scoring a decoder's parts on calibration text, in one pass of forward hooks (no gradients):

- layers: angular distance arccos(cos(h_in, h_out)) / pi between the hidden state entering a
  layer and the one leaving it, averaged over tokens — ShortGPT's block influence (1 - cos) up to
  a monotone map. For a block of n layers (Gromov et al., "The Unreasonable Ineffectiveness of the
  Deeper Layers") the same distance between the input of layer l and the input of layer l + n.
- attention heads: mean L2 norm of each query head's contribution to the output projection,
  x_h @ W_o[:, h]^T, per token (what removing the head takes out of the residual stream).
- FFN neurons: mean |activation entering the down projection| x the L2 norm of that neuron's
  output column (Wanda's |W| |x| taken per neuron).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgecompress.compress.llm.families import DECODERS, get_path, layer_list, shape_of


@dataclass(frozen=True)
class Scores:
    """Per decoder layer: `hidden` the layer inputs' mean pairwise angular distances
    (hidden[i][j] = distance between the input of layer i and of layer j, j = L is the last
    layer's output), `heads` (L, query heads), `ffn` (L, neurons); higher = more important."""

    hidden: torch.Tensor  # (L + 1, L + 1)
    heads: torch.Tensor | None
    ffn: torch.Tensor


def _angular(states: torch.Tensor) -> torch.Tensor:
    """(n, n) mean over tokens of arccos(cos(states[i, t], states[j, t])) / pi; states
    (n, T, hidden)."""
    unit = torch.nn.functional.normalize(states.double(), dim=-1)
    cos = torch.einsum("ith,jth->ijt", unit, unit).clamp(-1.0, 1.0)  # (n, n, T)
    return (torch.arccos(cos) / torch.pi).mean(-1)


def _weight_out_in(module: nn.Module) -> torch.Tensor:
    """(out, in) weight of a Linear or of GPT-2's Conv1D (which stores (in, out))."""
    return module.weight if isinstance(module, nn.Linear) else module.weight.t()


class _Recorder:
    """Hooks that collect what the scores need for one calibration text at a time."""

    def __init__(self, model: nn.Module, head_dim: int | None):
        family = DECODERS[model.config.model_type]
        self.layers = list(layer_list(model))
        n = len(self.layers)
        self.inputs: list[torch.Tensor | None] = [None] * (n + 1)
        self.heads = torch.zeros(n, 0) if head_dim is None else None
        self.ffn = None
        self.head_dim = head_dim
        self.handles = []
        for i, layer in enumerate(self.layers):
            self.handles.append(layer.register_forward_hook(self._layer_hook(i), with_kwargs=True))
            down = get_path(layer, family.down)
            self.handles.append(down.register_forward_pre_hook(self._ffn_hook(i, down)))
            if head_dim is not None:
                out = get_path(layer, family.output)
                self.handles.append(out.register_forward_pre_hook(self._head_hook(i, out)))

    def _layer_hook(self, i):
        def hook(module, args, kwargs, output):
            hidden_in = args[0] if args else kwargs["hidden_states"]
            hidden_out = output[0] if isinstance(output, tuple) else output
            self.inputs[i] = hidden_in[0].detach()  # (S, hidden), batch of one
            self.inputs[i + 1] = hidden_out[0].detach()
        return hook

    def _ffn_hook(self, i, down):
        def hook(module, args):
            act = args[0][0].detach().abs().mean(0)  # (ffn,)
            score = act * _weight_out_in(down).detach().norm(dim=0)
            if self.ffn is None:
                self.ffn = torch.zeros(len(self.layers), score.numel(), dtype=torch.float64)
            self.ffn[i] += score.double()
        return hook

    def _head_hook(self, i, out):
        def hook(module, args):
            x = args[0][0].detach()  # (S, heads * head_dim)
            weight = _weight_out_in(out).detach()  # (hidden, heads * head_dim)
            heads = x.shape[-1] // self.head_dim
            x = x.view(x.shape[0], heads, self.head_dim)
            w = weight.view(weight.shape[0], heads, self.head_dim)
            norms = torch.einsum("shd,ohd->sho", x, w).norm(dim=-1).mean(0)  # (heads,)
            if self.heads is None:
                self.heads = torch.zeros(len(self.layers), heads, dtype=torch.float64)
            self.heads[i] += norms.double()
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@torch.no_grad()
def score_decoder(model: nn.Module, batches, *, heads: bool) -> Scores:
    """Scores of `model`'s layers, heads (when `heads`) and FFN neurons, averaged over
    `batches` (input_ids (1, S) tensors)."""
    head_dim = shape_of(model.config).head_dim if heads else None
    recorder = _Recorder(model, head_dim)
    n = len(recorder.layers)
    hidden = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    count = 0
    try:
        for input_ids in batches:
            model(input_ids=input_ids, use_cache=False)
            hidden += _angular(torch.stack(recorder.inputs))  # (L + 1, L + 1)
            count += 1
    finally:
        recorder.remove()
    if count == 0:
        raise ValueError("no calibration text")
    hidden = hidden / count
    head_scores = None if recorder.heads is None or not heads else recorder.heads / count
    return Scores(hidden=hidden, heads=head_scores, ffn=recorder.ffn / count)
