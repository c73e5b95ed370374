"""Decoder-only language models: load (HF checkpoints, GGUF files, registry models), measure
(perplexity, KL and top-1 against a reference, greedy continuations), prune (layers, heads
respecting grouped-query attention, FFN neurons)."""

from edgecompress.compress.llm.families import DECODERS, Shape
from edgecompress.compress.llm.load import LoadedLM, inspect_lm, load_lm, resolve_lm, save_lm
from edgecompress.compress.llm.metrics import EvalConfig, evaluate_lm
from edgecompress.compress.llm.prune import LMPruneConfig, prune_lm

__all__ = ["DECODERS", "EvalConfig", "LMPruneConfig", "LoadedLM", "Shape", "evaluate_lm",
           "inspect_lm", "load_lm", "prune_lm", "resolve_lm", "save_lm"]
