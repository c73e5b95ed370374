"""A litert-torch decoder (`.tflite` with `prefill_<n>` and `decode` signatures and an external KV
cache, export_litert.py) on ai-edge-litert's interpreter: the LMSession of format "tflite".

The KV cache is the signatures' own inputs and outputs (`kv_cache_k_<layer>`, `kv_cache_v_<layer>`,
each (1, cache, kv_heads, head_dim) float32): every call passes it in and takes the updated one
back, as litert-torch's converter lays it out; the cache length is the model's context.
- generate: the prompt but its last token goes through the prefill signatures (the smallest
  length that holds it, zero-padded, in chunks of the largest when longer; prefill writes the
  cache and emits no logits, as litert-torch's examples convert it), then `decode` runs the last
  prompt token (its logits give the first new token) and each new token. Padded positions leave
  junk in the cache beyond the sequence; the causal mask hides them and decode overwrites each
  one before any query sees it.
- logits (teacher-forced): `decode` at every position in turn, the only signature with logits —
  the same graph generate decodes with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.llm.session import Generation, check_context

# module -> its pip name: edgecompress's own pinned dependencies (pyproject.toml), not an extra;
# a missing or broken one is still one line, never a traceback
LITERT_PACKAGES = {"ai_edge_litert": "ai-edge-litert", "litert_torch": "litert-torch",
                   "ai_edge_quantizer": "ai-edge-quantizer"}
SIDECAR = "litert_llm.json"  # beside the .tflite: {"eos_token_ids": [...]} (export_litert)
PREFILL = "prefill_"


def require_litert(who: str, modules: tuple[str, ...] = ("ai_edge_litert",)) -> None:
    """UserError "<who> needs <package>: pip install ..." when one of `modules` (keys of
    LITERT_PACKAGES) cannot be imported (found without importing it)."""
    import importlib.util

    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or half-removed install
            found = False
        if not found:
            package = LITERT_PACKAGES[module]
            raise UserError(f"{who} needs {package}, a dependency of edgecompress: pip install "
                            f"'{package}' (or reinstall edgecompress)")


def read_sidecar(path: Path) -> dict:
    """The export's notes beside .tflite `path` ({} when absent: EOS is then not masked)."""
    sidecar = Path(path).parent / SIDECAR
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {sidecar}: {err}") from None


class _Signature:
    """One signature of the interpreter, run without the SignatureRunner's per-call copies.

    ai-edge-litert's SignatureRunner resizes, reallocates and copies every input in and every
    output out as a new array on each call: with a 1280-token cache that is ~59 MB of fresh
    arrays per token for SmolLM2 (measured ~0.4 s a step on a loaded 2-core host, more than the
    model itself). Here tensors are allocated once (the shapes are static), the cache is copied
    into the input buffers and out of numpy views of the output buffers (no allocation). It
    reaches the runner's wrapper, subgraph and tensor indices (ai-edge-litert 2.3.0, pinned)."""

    def __init__(self, interpreter, key: str) -> None:
        runner = interpreter.get_signature_runner(key)
        self._interpreter, self._wrapper = interpreter, runner._interpreter_wrapper
        self._subgraph = runner._subgraph_index
        self.inputs, self.outputs = dict(runner._inputs), dict(runner._outputs)
        self.input_details = runner.get_input_details()
        self.output_details = runner.get_output_details()
        self._wrapper.AllocateTensors(self._subgraph)

    def run(self, cache: dict[str, np.ndarray], **inputs: np.ndarray) -> np.ndarray | None:
        """Invoke with `inputs` and the KV `cache`, which is updated in place; returns a copy of
        the logits (None for a signature without them)."""
        for name, value in (*inputs.items(), *cache.items()):
            self._wrapper.SetTensor(self.inputs[name], value, self._subgraph)
        self._wrapper.Invoke(self._subgraph)
        for name, buffer in cache.items():
            np.copyto(buffer, self._view(name))
        return self._view("logits").copy() if "logits" in self.outputs else None

    def _view(self, output: str) -> np.ndarray:
        # a view is valid only until the next invoke: taken fresh, never kept
        return self._wrapper.tensor(self._interpreter, self.outputs[output], self._subgraph)


class LiteRTSession:
    """`LMSession` over a litert-torch decoder `.tflite` with `threads` interpreter threads."""

    format = "tflite"

    def __init__(self, path: Path, *, threads: int) -> None:
        require_litert("running a LiteRT model")
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.threads = Path(path), threads
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        except (ValueError, RuntimeError) as err:
            raise UserError(f"LiteRT cannot load {self.path}: {err}") from None
        signatures = self._interpreter.get_signature_list()
        lengths = sorted(int(name[len(PREFILL):]) for name in signatures
                         if name.startswith(PREFILL) and name[len(PREFILL):].isdigit())
        if "decode" not in signatures or not lengths:
            raise UserError(f"{self.path} is not a litert-torch decoder (needs prefill_<n> and "
                            f"decode signatures; has {', '.join(signatures) or 'none'})")
        self.prefill_lengths = tuple(lengths)
        self._decode = _Signature(self._interpreter, "decode")
        self._prefill = {n: _Signature(self._interpreter, f"{PREFILL}{n}") for n in lengths}
        # (name, shape) of every cache buffer: (1, cache, kv_heads, head_dim)
        self._cache = {name: tuple(detail["shape"])
                       for name, detail in self._decode.input_details.items()
                       if name.startswith("kv_cache_")}
        self.context = int(next(iter(self._cache.values()))[1])
        self.vocab = int(self._decode.output_details["logits"]["shape"][-1])
        self._eos = [int(i) for i in read_sidecar(self.path).get("eos_token_ids", [])]

    def _empty_cache(self) -> dict[str, np.ndarray]:
        return {name: np.zeros(shape, np.float32) for name, shape in self._cache.items()}

    def _step(self, token: int, position: int, cache: dict) -> np.ndarray:
        """One decode: (vocab,) logits of `token` at `position`; `cache` updated in place."""
        return self._decode.run(cache, tokens=np.array([[token]], np.int32),
                                input_pos=np.array([position], np.int32)).reshape(-1)

    def _fill(self, ids: list[int], cache: dict) -> None:
        """Prefill `ids` from position 0 into `cache` (see the module docstring)."""
        start, largest = 0, self.prefill_lengths[-1]
        while start < len(ids):
            chunk = ids[start:start + largest]
            # the smallest signature holding the chunk whose padding stays inside the cache
            length = next((n for n in self.prefill_lengths
                           if n >= len(chunk) and start + n <= self.context), None)
            if length is None:  # the tail near the end of the cache: one decode per token
                for offset, token in enumerate(chunk):
                    self._step(token, start + offset, cache)
            else:
                tokens = np.zeros((1, length), np.int32)
                tokens[0, :len(chunk)] = chunk
                self._prefill[length].run(
                    cache, tokens=tokens,
                    input_pos=np.arange(start, start + length, dtype=np.int32))
            start += len(chunk)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab) float32 logits, one decode per position over the KV cache."""
        ids = [int(i) for i in ids]
        check_context(len(ids), self.context, self.path)
        cache = self._empty_cache()
        return np.stack([self._step(token, position, cache)
                         for position, token in enumerate(ids)]).astype(np.float32, copy=False)

    def _pick(self, logits: np.ndarray) -> int:
        logits = logits.copy()
        logits[self._eos] = -np.inf  # the protocol's fixed token count, as the reference does
        return int(logits.argmax())

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy: exactly `max_new_tokens` new tokens (EOS masked when the export recorded
        it), timed: prefill + the first pick, then one decode per token."""
        ids = [int(i) for i in ids]
        if not ids or max_new_tokens < 1:
            raise ValueError("generate needs a prompt and max_new_tokens >= 1")
        check_context(len(ids) + max_new_tokens, self.context, self.path)
        cache = self._empty_cache()
        start = time.perf_counter()
        self._fill(ids[:-1], cache)
        tokens = [self._pick(self._step(ids[-1], len(ids) - 1, cache))]
        first = time.perf_counter()
        while len(tokens) < max_new_tokens:
            tokens.append(self._pick(self._step(tokens[-1], len(ids) + len(tokens) - 1,
                                                cache)))
        return Generation(tokens, first - start, time.perf_counter() - first)

    def close(self) -> None:
        """Drop the interpreter (its arena and the mapped model)."""
        self._decode = self._prefill = self._interpreter = None


def open_tflite(path: Path, *, threads: int) -> LiteRTSession:
    return LiteRTSession(path, threads=threads)
