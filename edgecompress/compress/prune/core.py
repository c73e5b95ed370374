"""`prune_model(loaded, config, samples)`: vocabulary, then layers, then heads and FFN neurons
(scored on the model that remains), then sparsity. Scoring (importance.py), allocation
(schedule.py) and surgery (surgery.py, vocab.py, sparsity.py) stay separate; this only orders them.
"""

from __future__ import annotations

from dataclasses import dataclass

import edgecompress.compress.prune.schedule as schedule
from edgecompress.compress.models.arch import blocks, layers
from edgecompress.compress.models.loading import LoadedModel
from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.prune.importance import (
    Samples,
    gradient_importance,
    layer_importance,
    magnitude_importance,
)
from edgecompress.compress.prune.sparsity import magnitude_sparsity, nm_sparsity
from edgecompress.compress.prune.surgery import (
    keep_layers,
    layer_shapes,
    remove_heads,
    remove_neurons,
)
from edgecompress.compress.prune.vocab import corpus_texts, prune_vocabulary
from edgecompress.errors import UserError


@dataclass(frozen=True)
class PruneOutcome:
    loaded: LoadedModel  # the same module, edited in place (a new tokenizer if the vocab shrank)
    report: dict  # JSON-ready: what was removed where, and how it was scored


def count_params(loaded: LoadedModel) -> int:
    return sum(p.numel() for p in loaded.module.parameters())


def prune_model(loaded: LoadedModel, config: PruneConfig,
                samples: Samples | None = None) -> PruneOutcome:
    """Prune `loaded` in place as `config` says; `samples` feed data-driven scoring.

    Returns the outcome. Raises UserError for requests the model cannot satisfy (an emptied
    layer, a missing layer, an empty corpus, an unreachable budget, scoring without samples).
    """
    if config.needs_data and samples is None:
        raise UserError("this pruning request scores on data: give a dataset of samples")
    report: dict = {"shapes_before": _shapes(loaded)}
    if config.vocab_corpus:
        loaded, report["vocabulary"] = prune_vocabulary(
            loaded, corpus_texts(config.vocab_corpus, config.vocab_corpus_text_col))
    kept = _prune_layers(loaded, config, samples, report)
    _prune_units(loaded, config, samples, kept, report)
    if config.sparsity:
        report["sparsity"] = magnitude_sparsity(loaded, config.sparsity)
    elif config.nm is not None:
        report["sparsity"] = nm_sparsity(loaded, *config.nm)
    report["shapes_after"] = _shapes(loaded)
    return PruneOutcome(loaded, report)


def _shapes(loaded: LoadedModel) -> dict | None:
    """Heads and FFN width per layer; None for a family whose layers cannot be cut (only its
    vocabulary can be pruned: any other request is refused by the surgery, naming why)."""
    from edgecompress.compress.models.arch import family_of

    if loaded.kind == "hf" and family_of(loaded.module.hf).prunable:
        return None
    return layer_shapes(loaded)


def _prune_layers(loaded: LoadedModel, config: PruneConfig, samples: Samples | None,
                  report: dict) -> list[int]:
    """Drop layers; returns the kept layers' indices in the input model."""
    total = len(layers(loaded))
    if config.keep_layers is not None:
        keep = sorted(set(config.keep_layers))
        method = "given"
    elif config.layers:
        scores = None
        if config.layer_method == "importance":
            scores = layer_importance(loaded, samples)
            report["layer_importance"] = {"method": "loss increase when skipped",
                                          "scores": list(scores)}
        keep = schedule.layers_to_keep(total, config.layers, scores)
        method = config.layer_method
    else:
        return list(range(total))
    keep_layers(loaded, keep)
    report["layers"] = {"method": method, "kept": keep,
                        "dropped": [i for i in range(total) if i not in keep]}
    return keep


def _prune_units(loaded: LoadedModel, config: PruneConfig, samples: Samples | None,
                 kept: list[int], report: dict) -> None:
    """Score, allocate and remove heads and FFN neurons."""
    heads, ffn = config.heads, config.ffn
    if config.budget is not None:
        heads = ffn = _budget_fraction(loaded, config.budget)
        report["budget"] = {"target_params": config.budget, "fraction": heads}
    explicit = {kept.index(layer): list(h) for layer, h in config.drop_heads if layer in kept}
    if not (heads or ffn or explicit):
        return
    scores = None
    if heads or ffn:
        scores = (gradient_importance(loaded, samples) if config.importance == "gradient"
                  else magnitude_importance(loaded))
        report["importance"] = {"method": scores.method, "samples": scores.samples,
                                "labels": scores.label_source}
    head_plan = schedule.allocate(scores.heads, heads, config.scope) if heads else {}
    for layer, extra in explicit.items():
        head_plan[layer] = sorted(set(head_plan.get(layer, [])) | set(extra))
    ffn_plan = schedule.allocate(scores.ffn, ffn, config.scope) if ffn else {}
    remove_heads(loaded, head_plan)
    remove_neurons(loaded, ffn_plan)
    # keyed by the input model's layer numbers (kept[i] is what layer i was before dropping)
    report["heads"] = {"fraction": heads, "scope": config.scope,
                       "removed": {str(kept[k]): v for k, v in sorted(head_plan.items())}}
    report["ffn"] = {"fraction": ffn, "scope": config.scope,
                     "removed_per_layer": {str(kept[k]): len(v)
                                           for k, v in sorted(ffn_plan.items())}}
    if config.budget is not None:
        report["budget"]["met"] = count_params(loaded) <= config.budget


def _budget_fraction(loaded: LoadedModel, budget: int) -> float:
    parts = blocks(loaded)
    return schedule.budget_fraction(count_params(loaded), budget, [b.heads for b in parts],
                                    [b.ffn for b in parts], parts[0].query.in_features,
                                    parts[0].head_dim)
