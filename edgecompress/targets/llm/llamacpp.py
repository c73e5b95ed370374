"""A GGUF file on llama.cpp (through llama-cpp-python): the LMSession of format "gguf".

Two llama.cpp contexts over the one memory-mapped model, each made on first use and remade only
when a longer sequence needs a larger one: a scorer (`logits_all=True`: logits at every position
of a teacher-forced sequence, for KL / top-1 / perplexity) and a generator (`logits_all=False`,
as llama.cpp's own tools decode: only the last position's logits are computed, so the lm_head
over a long prompt is not paid for in time to first token). Greedy = argmax of those logits; the
decode runs the full `max_new_tokens` (no stop at end-of-text) so every run times the same work.

`exact=True` keeps the KV cache in f32 instead of llama.cpp's default f16: with an f32 GGUF the
logits then match torch to float rounding (the conversion check); benchmarks use the defaults.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.llm.session import Generation, check_context

EXTRA_HINT = "pip install 'edgecompress[llm]'"
_MIN_CTX = 512


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as err:
        raise UserError(f"running a GGUF needs llama-cpp-python ({err}): {EXTRA_HINT}") from None
    return llama_cpp


class LlamaCppSession:
    """One GGUF on llama.cpp at `threads` threads (prompt and decode alike)."""

    format = "gguf"

    def __init__(self, path: Path, *, threads: int, exact: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"GGUF not found: {self.path}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads, self.exact = threads, exact
        self._contexts: dict[bool, object] = {}  # logits_all -> llama_cpp.Llama
        self.context_train = self._open(_MIN_CTX, logits_all=False)._model.n_ctx_train()

    def _open(self, need: int, *, logits_all: bool):
        """The context for `logits_all` holding at least `need` tokens."""
        current = self._contexts.get(logits_all)
        if current is not None and current.n_ctx() >= need:
            return current
        llama_cpp = _llama_cpp()
        n_ctx = max(_MIN_CTX, -(-need // 256) * 256)
        extra = {"type_k": llama_cpp.GGML_TYPE_F32, "type_v": llama_cpp.GGML_TYPE_F32} \
            if self.exact else {}
        if current is not None:
            current.close()
        try:
            llama = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=n_ctx, n_batch=n_ctx if logits_all else 512,
                n_threads=self.threads, n_threads_batch=self.threads, logits_all=logits_all,
                verbose=False, **extra)
        except ValueError as err:  # llama-cpp-python: "Failed to load model from file"
            raise UserError(f"llama.cpp cannot load {self.path}: {err}") from None
        self._contexts[logits_all] = llama
        return llama

    def _check_length(self, length: int) -> None:
        check_context(length, self.context_train, self.path)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        self._check_length(len(ids))
        llama = self._open(len(ids), logits_all=True)
        llama.reset()
        llama.eval(ids)
        return np.array(llama.scores[:len(ids)], dtype=np.float32, copy=True)

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        ids = [int(i) for i in ids]
        if not ids or max_new_tokens < 1:
            raise ValueError("generate needs a prompt and max_new_tokens >= 1")
        self._check_length(len(ids) + max_new_tokens)
        llama = self._open(len(ids) + max_new_tokens, logits_all=False)
        llama_cpp, vocab = _llama_cpp(), llama.n_vocab()

        def next_token() -> int:
            row = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
            return int(np.ctypeslib.as_array(row, shape=(vocab,)).argmax())

        llama.reset()
        start = time.perf_counter()
        llama.eval(ids)
        tokens = [next_token()]
        first = time.perf_counter()
        while len(tokens) < max_new_tokens:
            llama.eval([tokens[-1]])
            tokens.append(next_token())
        end = time.perf_counter()
        return Generation(tokens=tokens, ttft_s=first - start, decode_s=end - first)

    def close(self) -> None:
        for llama in self._contexts.values():
            llama.close()
        self._contexts.clear()


def open_gguf(path: Path, *, threads: int, exact: bool = False) -> LlamaCppSession:
    return LlamaCppSession(path, threads=threads, exact=exact)
