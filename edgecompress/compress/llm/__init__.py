"""Decoder-only language models: load (HF checkpoints, GGUF files, registry models), measure
(perplexity, KL and top-1 against a reference, greedy continuations), prune (layers, heads
respecting grouped-query attention, FFN neurons), export to an LLM target behind a KL / top-1
gate against the torch reference session."""

from edgecompress.compress.lazy import lazy_exports

_WHERE = {  # public name -> the submodule defining it
    "DECODERS": "families", "EvalConfig": "config", "LMPruneConfig": "config",
    "LoadedLM": "load", "Shape": "families", "evaluate_lm": "metrics", "inspect_lm": "load",
    "load_lm": "load", "prune_lm": "prune", "resolve_lm": "load", "save_lm": "load",
    "TorchSession": "reference", "export_lm": "export", "gate_lm": "gate",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
