"""An LLM session over an ExecuTorch `.pte` decoder with a static KV cache, as
export_executorch.py writes it: method "forward"(input_ids (1, T), cache_position (T,)) ->
logits (1, T, vocab), T in [1, max_seq_len - 1]; the cache (max_seq_len positions) lives in the
program's mutable buffers, and the constant method "get_max_seq_len" says its length.

Teacher-forced logits: the sequence in chunks of at most max_seq_len - 1 tokens, each at its
cache positions (one chunk for any sequence the gate scores). Positions are written before they
are read (the custom SDPA attends causally up to the chunk's last position), so a new sequence
needs no cache reset. Greedy generation: prefill the prompt, argmax of its last logits (timed as
the first token), then one forward per token at its position. Loaded with `executorch.runtime`;
ExecuTorch's LLM custom ops (llama::custom_sdpa) are registered by importing their library.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.extras import require
from edgecompress.targets.llm.session import Generation, check_context


class ExecuTorchLMSession:
    """`LMSession` over ExecuTorch (XNNPACK delegate) with `threads` threads in its
    process-wide threadpool."""

    format = "pte"

    def __init__(self, path: Path, *, threads: int) -> None:
        require("pte", f"running {path}")
        import torch

        from edgecompress.targets.executorch_backend import _executorch_threads
        from edgecompress.targets.runtime_util import quiet_fd2

        self.path = Path(path)
        with quiet_fd2():  # the runtime's C++ logs go to fd 2
            # the LLM ops' kernels (llama::custom_sdpa, quantized_decomposed::embedding_byte)
            from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
            from executorch.kernels import quantized  # noqa: F401
            from executorch.runtime import Runtime

            self.threads = _executorch_threads(threads)
            program = Runtime.get().load_program(str(self.path))
            if "forward" not in program.method_names or \
                    "get_max_seq_len" not in program.method_names:
                raise UserError(f"{self.path}: not an edgecompress LLM .pte (methods: "
                                f"{', '.join(sorted(program.method_names))}; expected forward "
                                "and get_max_seq_len)")
            self.context = int(program.load_method("get_max_seq_len").execute([])[0])
            # EOS is masked in greedy picks (the protocol's fixed token count)
            self._eos = [int(i) for i in program.load_method("get_eos_ids").execute([])] \
                if "get_eos_ids" in program.method_names else []
            self._forward = program.load_method("forward")
        self._torch = torch

    def _run(self, ids: list[int], start: int) -> np.ndarray:
        """(len(ids), vocab) logits of `ids` at cache positions start.., in chunks."""
        torch, chunk, rows = self._torch, self.context - 1, []
        for at in range(0, len(ids), chunk):
            part = ids[at:at + chunk]
            out = self._forward.execute([
                torch.tensor([part], dtype=torch.long),
                torch.arange(start + at, start + at + len(part), dtype=torch.long)])[0]
            rows.append(out[0].numpy())  # (len(part), vocab)
        return np.concatenate(rows).astype(np.float32, copy=False)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab) float32 logits, teacher-forced from cache position 0."""
        ids = [int(i) for i in ids]
        check_context(len(ids), self.context, self.path)
        return self._run(ids, 0)

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy: exactly `max_new_tokens` new tokens (EOS masked), timed."""
        ids = [int(i) for i in ids]
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        check_context(len(ids) + max_new_tokens, self.context, self.path)
        start = time.perf_counter()
        tokens = [self._pick(self._run(ids, 0)[-1])]  # prefill + the first pick
        first = time.perf_counter()
        while len(tokens) < max_new_tokens:
            position = len(ids) + len(tokens) - 1
            tokens.append(self._pick(self._run(tokens[-1:], position)[-1]))
        return Generation(tokens, first - start, time.perf_counter() - first)

    def _pick(self, logits: np.ndarray) -> int:
        """Greedy over (vocab,) logits with EOS masked."""
        logits = logits.copy()
        logits[self._eos] = -np.inf
        return int(logits.argmax())

    def close(self) -> None:
        self._forward = None

