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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.llm.session import Generation

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
        if length > self.context_train:
            raise UserError(f"{length} tokens exceed the model's context of "
                            f"{self.context_train}")

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


PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "llm" / "llamacpp.toml"


@dataclass(frozen=True)
class GGUFProfile:
    """The llamacpp target (targets/profiles/llm/llamacpp.toml): what `export_gguf` writes and
    the KL / top-1 gate its artifact must pass against the torch checkpoint."""

    name: str
    description: str
    threads: int
    scheme: str
    schemes: tuple[str, ...]
    gates: tuple[tuple[str, float, float], ...]  # (scheme or "" = default, max_kl, min_top1)
    prompt_tokens: tuple[int, ...] = (128, 512)
    new_tokens: int = 128

    def __post_init__(self) -> None:
        from edgecompress.targets.llm.gguf_export import SCHEMES

        for name in (*self.schemes, self.scheme):
            if name not in SCHEMES:
                raise ValueError(f"scheme: unknown GGUF scheme {name!r} (known: "
                                 f"{', '.join(SCHEMES)})")
        if self.scheme not in self.schemes:
            raise ValueError(f"scheme: {self.scheme!r} is not among schemes")
        if self.threads < 1 or self.new_tokens < 1 or not self.prompt_tokens \
                or min(self.prompt_tokens) < 1:
            raise ValueError("threads, new_tokens and prompt_tokens must be positive")
        if not any(name == "" for name, _, _ in self.gates):
            raise ValueError("gate: needs max_kl and min_top1")
        for name, max_kl, min_top1 in self.gates:
            if not max_kl > 0 or not 0.0 <= min_top1 <= 1.0:
                raise ValueError(f"gate{'.' + name if name else ''}: expected max_kl > 0 and "
                                 f"min_top1 in [0, 1], got {max_kl} and {min_top1}")

    def gate(self, scheme: str | None = None) -> tuple[float, float]:
        """(max_kl, min_top1) for `scheme` (the profile's when None)."""
        table = {name: (kl, top1) for name, kl, top1 in self.gates}
        return table.get(scheme or self.scheme, table[""])

    def check(self, scheme: str, kl: float, top1: float) -> str | None:
        """None when (kl, top1) pass the gate of `scheme`, else the one-line reason."""
        max_kl, min_top1 = self.gate(scheme)
        if kl > max_kl or top1 < min_top1:
            return (f"GGUF {scheme}: KL {kl:.4g} (max {max_kl:g}), top-1 agreement {top1:.3f} "
                    f"(min {min_top1:g})")
        return None


def load_gguf_profile(path: Path = PROFILE) -> GGUFProfile:
    """The llamacpp profile; UserError (one line, naming the file) when it is malformed."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        gate = dict(data.get("gate", {}))
        gates = [("", gate.pop("max_kl"), gate.pop("min_top1"))]
        gates += [(name, sub["max_kl"], sub["min_top1"]) for name, sub in gate.items()]
        bench = data.get("bench", {})
        if data.get("format") != "gguf":
            raise ValueError(f"format: expected 'gguf', got {data.get('format')!r}")
        return GGUFProfile(
            name=data["name"], description=data["description"], threads=data["threads"],
            scheme=data["scheme"], schemes=tuple(data["schemes"]), gates=tuple(gates),
            prompt_tokens=tuple(bench.get("prompt_tokens", (128, 512))),
            new_tokens=bench.get("new_tokens", 128))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError,
            AttributeError) as err:
        what = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise UserError(f"{path}: {what}") from None
