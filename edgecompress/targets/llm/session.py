"""One loaded LLM artifact on one runtime, behind one protocol: teacher-forced logits for quality
(KL / top-1 / perplexity against the torch reference) and greedy generation with its timing.
`open_session` dispatches on the artifact; each runtime adds its opener to OPENERS."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgecompress.errors import UserError


@dataclass(frozen=True)
class Generation:
    tokens: list[int]  # the new tokens, greedy
    ttft_s: float  # prompt in, first new token out
    decode_s: float  # every later token


class LMSession(Protocol):
    format: str  # "onnx-genai" | "gguf" | "tflite" | "pte" | "torch"

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab) float32 logits at every position, teacher-forced."""

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy continuation of `ids`."""


# format -> "module:function" opening it, imported on use (the runtime modules import this one)
OPENERS: dict[str, str] = {"gguf": "edgecompress.targets.llm.llamacpp:open_gguf"}


def artifact_format(path: Path) -> str:
    return "gguf" if Path(path).suffix.lower() == ".gguf" else ""


def open_session(path: Path, *, threads: int) -> LMSession:
    fmt = artifact_format(path)
    if fmt not in OPENERS:
        raise UserError(f"{path}: not an LLM artifact this package runs ({', '.join(OPENERS)})")
    import importlib

    module, _, name = OPENERS[fmt].partition(":")
    opener: Callable[..., LMSession] = getattr(importlib.import_module(module), name)
    return opener(Path(path), threads=threads)
