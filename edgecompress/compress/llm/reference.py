"""The torch reference as an LLM session (targets/llm/session.py's protocol): what every exported
LLM artifact is gated against, through the same two calls its own session answers."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from edgecompress.targets.llm.session import Generation


def eos_ids(config) -> list[int]:
    """The model's end-of-sequence ids (config.eos_token_id may be an int, a list or None)."""
    eos = config.eos_token_id
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


class TorchSession:
    """`LMSession` over a transformers *ForCausalLM in fp32 (eval mode)."""

    format = "torch"

    def __init__(self, model) -> None:
        self.model = model.eval()
        self._eos = eos_ids(model.config)

    def close(self) -> None:
        """Nothing to release: the model is the caller's."""

    @torch.no_grad()
    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab) float32 logits, one forward without a cache."""
        out = self.model(input_ids=torch.tensor([list(ids)]), use_cache=False).logits[0]
        return out.float().numpy()

    @torch.no_grad()
    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy with the KV cache: exactly `max_new_tokens` tokens, EOS masked (the
        protocol's fixed count, as min_new_tokens does), timed."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        start = time.perf_counter()
        out = self.model(input_ids=torch.tensor([list(ids)]), use_cache=True)
        tokens = [self._pick(out.logits[0, -1])]
        first = time.perf_counter()
        while len(tokens) < max_new_tokens:
            out = self.model(input_ids=torch.tensor([[tokens[-1]]]),
                             past_key_values=out.past_key_values, use_cache=True)
            tokens.append(self._pick(out.logits[0, -1]))
        return Generation(tokens, first - start, time.perf_counter() - first)

    def _pick(self, logits: torch.Tensor) -> int:
        logits = logits.float().clone()  # (vocab,)
        logits[self._eos] = -torch.inf
        return int(logits.argmax())
