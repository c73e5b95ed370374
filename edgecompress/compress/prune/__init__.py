"""Structured pruning that really shrinks the model: heads, FFN neurons, layers, vocabulary,
plus (size-only) unstructured / N:M sparsity, and a gate that benches whether it paid off.

Scoring (`importance`), surgery (`surgery`, `vocab`, `sparsity`) and scheduling (`schedule`) are
separate; `prune_model` orders them and `run_prune` is the CLI stage.
"""

_WHERE = {  # public name -> the submodule defining it
    "Importance": "importance", "MANIFEST": "stage", "PruneConfig": "config",
    "PruneOutcome": "core", "PruneRequest": "stage", "Samples": "importance",
    "count_params": "core", "gate_verdict": "gate", "gradient_importance": "importance",
    "keep_layers": "surgery", "layer_importance": "importance", "layer_shapes": "surgery",
    "magnitude_importance": "importance", "prune_model": "core", "prune_vocabulary": "vocab",
    "remove_heads": "surgery", "remove_neurons": "surgery", "run_prune": "stage",
    "speedup_gate": "gate",
}

__all__ = ["MANIFEST", "Importance", "PruneConfig", "PruneOutcome", "PruneRequest",
           "Samples", "count_params", "gate_verdict", "gradient_importance",
           "keep_layers", "layer_importance", "layer_shapes",
           "magnitude_importance", "prune_model", "prune_vocabulary", "remove_heads",
           "remove_neurons", "run_prune", "speedup_gate"]


def __getattr__(name: str):
    """Import a public name's module on first use: the package's configs (config.py) stay
    importable without torch, so the CLI can derive its flags from them at `--help` time."""
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
