"""An LLM session over an ONNX Runtime GenAI model folder (genai_config.json + model.onnx with
its KV cache), as the model builder writes it (export_ortgenai.py).

Teacher-forced logits: one Generator appends the whole sequence (one prefill) and reads the
model's `logits` output, which the builder keeps for every position (it is only cut to the last
one with the builder's prune_lm_head option, which edgecompress never sets). Greedy generation:
`min_length` = `max_length` = prompt + new tokens, so EOS is masked until the last token (the
protocol's fixed token count), timed around append_tokens and each generate_next_token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.extras import require
from edgecompress.targets.llm.session import GENAI_CONFIG, Generation, check_context


def read_genai_config(path: Path) -> dict:
    """genai_config.json of model folder `path`; UserError when it is unreadable."""
    try:
        return json.loads((Path(path) / GENAI_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {Path(path) / GENAI_CONFIG}: {err}") from None


class OrtGenAISession:
    """`LMSession` over ONNX Runtime GenAI on the CPU with `threads` intra-op threads."""

    format = "onnx-genai"

    def __init__(self, path: Path, *, threads: int) -> None:
        require("onnx-genai", "running an ONNX Runtime GenAI model")
        import onnxruntime_genai as og

        self.path, self.threads = Path(path), threads
        config = read_genai_config(self.path)["model"]
        self.context, self.vocab = int(config["context_length"]), int(config["vocab_size"])
        og_config = og.Config(str(self.path))
        # the decoder's ORT session: exactly `threads` intra-op threads, no inter-op pool
        og_config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        self._og = og
        self._model = og.Model(og_config)

    def close(self) -> None:
        self._model = None  # onnxruntime-genai frees the model's sessions with it

    def _generator(self, total: int, *, min_length: int = 0):
        params = self._og.GeneratorParams(self._model)
        params.set_search_options(max_length=total, min_length=min_length, do_sample=False,
                                  batch_size=1)
        return self._og.Generator(self._model, params)

    def _check_length(self, total: int) -> None:
        check_context(total, self.context, self.path)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab) float32 logits, one prefill of the whole sequence."""
        ids = [int(i) for i in ids]
        self._check_length(len(ids))
        generator = self._generator(min(len(ids) + 1, self.context))
        generator.append_tokens(ids)
        logits = np.asarray(generator.get_output("logits"), dtype=np.float32)  # (1, L, vocab)
        if logits.shape[:2] != (1, len(ids)):
            raise RuntimeError(f"{self.path}: logits of shape {logits.shape} for {len(ids)} "
                               "tokens (a model built with prune_lm_head keeps only the last)")
        return logits[0]

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy: exactly `max_new_tokens` new tokens (EOS masked), timed."""
        ids = [int(i) for i in ids]
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        total = len(ids) + max_new_tokens
        self._check_length(total)
        generator = self._generator(total, min_length=total)  # KV buffers allocated here
        start = time.perf_counter()
        generator.append_tokens(ids)  # prefill
        generator.generate_next_token()  # picks the first token from the prefill's logits
        first = time.perf_counter()
        tokens = [int(generator.get_next_tokens()[0])]
        while len(tokens) < max_new_tokens:
            generator.generate_next_token()  # one forward of the last token + its pick
            tokens.append(int(generator.get_next_tokens()[0]))
        return Generation(tokens, first - start, time.perf_counter() - first)
