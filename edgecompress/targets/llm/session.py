"""LLM sessions: one loaded language-model artifact in one runtime, behind one protocol.

Every LLM format edgecompress writes (ONNX Runtime GenAI folders, GGUF files, ...) is measured
through the same two calls, so the verification gate (KL / top-1 against the torch reference) and
the bench treat them alike:

    session = open_session(path, threads=2)
    session.logits(ids)              # (len(ids), vocab) float32, teacher-forced, every position
    session.generate(ids, 128)       # Generation(tokens, ttft_s, decode_s), greedy

`open_session` picks the runtime from the artifact itself (a folder with genai_config.json is
ONNX Runtime GenAI, ...) through OPENERS, one entry per format; a runtime module is imported only
when one of its artifacts is opened, so its optional extra is needed only then. The torch
reference session lives in compress/llm (targets imports nothing of compress).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgecompress.errors import UserError


@dataclass(frozen=True)
class Generation:
    """A greedy continuation. `tokens`: exactly max_new_tokens new ids (EOS is masked until then,
    as transformers' min_new_tokens does, so every session decodes the same number of tokens);
    `ttft_s`: seconds from the prompt to the first new token (prefill + its pick); `decode_s`:
    seconds for the other len(tokens) - 1 tokens, one forward each."""

    tokens: list[int]
    ttft_s: float
    decode_s: float

    @property
    def decode_tok_s(self) -> float:
        """Decode tokens per second after the first (nan with fewer than two tokens)."""
        steps = len(self.tokens) - 1
        return steps / self.decode_s if steps > 0 and self.decode_s > 0 else math.nan


class LMSession(Protocol):
    """One loaded LLM artifact in one runtime."""

    format: str  # "onnx-genai" | "gguf" | "tflite" | "pte" | "torch"

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab) float32 logits at every position, teacher-forced."""

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy continuation of `ids`: exactly `max_new_tokens` new tokens, timed."""

    def close(self) -> None:
        """Release what the runtime holds (contexts, loaded programs); the session is not used
        after it."""


@dataclass(frozen=True)
class Opener:
    """How one format is recognised on disk and opened: `recognises(path)` looks at files only;
    `target` is "module:callable", imported on use; the callable takes (path, threads=)."""

    recognises: Callable[[Path], bool]
    target: str

    def open(self, path: Path, threads: int) -> LMSession:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)(path, threads=threads)


def check_context(tokens: int, context: int, path: Path) -> None:
    """UserError (one line) when a sequence of `tokens` exceeds the artifact's `context`: every
    session checks before it runs."""
    if tokens > context:
        raise UserError(f"{tokens} tokens exceed the model's context of {context} ({path})")


GENAI_CONFIG = "genai_config.json"


def _is_genai_folder(path: Path) -> bool:
    return path.is_dir() and (path / GENAI_CONFIG).is_file()


# format -> its opener; a new runtime is one entry (and its module)
OPENERS: dict[str, Opener] = {
    "onnx-genai": Opener(_is_genai_folder, "edgecompress.targets.llm.ortgenai:OrtGenAISession"),
    "gguf": Opener(lambda path: path.is_file() and path.suffix == ".gguf",
                   "edgecompress.targets.llm.llamacpp:open_gguf"),
    "tflite": Opener(lambda path: path.is_file() and path.suffix == ".tflite",
                     "edgecompress.targets.llm.litert_llm:open_tflite"),
    "pte": Opener(lambda path: path.is_file() and path.suffix == ".pte",
                  "edgecompress.targets.llm.executorch_llm:ExecuTorchLMSession"),
}


def artifact_format(path: Path) -> str:
    """The format of LLM artifact `path`; UserError when it is missing or no runtime takes it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"LLM artifact not found: {path}")
    for name, opener in OPENERS.items():
        if opener.recognises(path):
            return name
    raise UserError(f"{path} is not an LLM artifact edgecompress runs (known: "
                    f"{', '.join(OPENERS)}; an ONNX Runtime GenAI folder holds {GENAI_CONFIG})")


def open_session(path: Path, *, threads: int) -> LMSession:
    """The session of LLM artifact `path` in its runtime with `threads` threads. Raises UserError
    for an unknown artifact, threads < 1 or a runtime whose optional extra is missing."""
    if threads < 1:
        raise UserError(f"threads must be >= 1, got {threads}")
    return OPENERS[artifact_format(path)].open(Path(path), threads)
