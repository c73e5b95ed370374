"""Structured pruning that really shrinks the model: heads, FFN neurons, layers, vocabulary,
plus (size-only) unstructured / N:M sparsity, and a gate that benches whether it paid off.

Scoring (`importance`), surgery (`surgery`, `vocab`, `sparsity`) and scheduling (`schedule`) are
separate; `prune_model` orders them and `run_prune` is the CLI stage.
"""

from edgecompress.compress.lazy import lazy_exports

_WHERE = {  # public name -> the submodule defining it
    "Importance": "importance", "MANIFEST": "stage", "PruneConfig": "config",
    "PruneOutcome": "core", "PruneRequest": "stage", "Samples": "importance",
    "count_params": "core", "gate_verdict": "gate", "gradient_importance": "importance",
    "keep_layers": "surgery", "layer_importance": "importance", "layer_shapes": "surgery",
    "magnitude_importance": "importance", "prune_model": "core", "prune_vocabulary": "vocab",
    "remove_heads": "surgery", "remove_neurons": "surgery", "run_prune": "stage",
    "speedup_gate": "gate",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
