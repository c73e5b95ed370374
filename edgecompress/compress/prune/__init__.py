"""Structured pruning that really shrinks the model: heads, FFN neurons, layers, vocabulary,
plus (size-only) unstructured / N:M sparsity, and a gate that benches whether it paid off.

Scoring (`importance`), surgery (`surgery`, `vocab`, `sparsity`) and scheduling (`schedule`) are
separate; `prune_model` orders them and `run_prune` is the CLI stage.
"""

from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.prune.core import PruneOutcome, count_params, prune_model
from edgecompress.compress.prune.gate import gate_verdict, speedup_gate
from edgecompress.compress.prune.importance import (Importance, Samples, gradient_importance,
                                                    layer_importance, magnitude_importance)
from edgecompress.compress.prune.stage import MANIFEST, PruneRequest, run_prune
from edgecompress.compress.prune.surgery import (keep_layers, layer_shapes, remove_heads,
                                                 remove_neurons)
from edgecompress.compress.prune.vocab import prune_vocabulary

__all__ = ["MANIFEST", "Importance", "PruneConfig", "PruneOutcome", "PruneRequest",
           "Samples", "count_params", "gate_verdict", "gradient_importance",
           "keep_layers", "layer_importance", "layer_shapes",
           "magnitude_importance", "prune_model", "prune_vocabulary", "remove_heads",
           "remove_neurons", "run_prune", "speedup_gate"]
