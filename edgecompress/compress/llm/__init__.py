"""Decoder-only language models: load (HF checkpoints, GGUF files, registry models), measure
(perplexity, KL and top-1 against a reference, greedy continuations), prune (layers, heads
respecting grouped-query attention, FFN neurons)."""

_WHERE = {  # public name -> the submodule defining it
    "DECODERS": "families", "EvalConfig": "config", "LMPruneConfig": "config",
    "LoadedLM": "load", "Shape": "families", "evaluate_lm": "metrics", "inspect_lm": "load",
    "load_lm": "load", "prune_lm": "prune", "resolve_lm": "load", "save_lm": "load",
}

__all__ = ["DECODERS", "EvalConfig", "LMPruneConfig", "LoadedLM", "Shape", "evaluate_lm",
           "inspect_lm", "load_lm", "prune_lm", "resolve_lm", "save_lm"]


def __getattr__(name: str):
    """Import a public name's module on first use: the configs (config.py) stay importable
    without torch, so the CLI can derive its flags from them at `--help` time."""
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
