"""Structured pruning of a decoder: what to remove (`LMPruneConfig`), chosen from scores on
calibration text (importance.py), cut out physically (surgery.py).

Attention heads respect grouped-query attention in one of two ways, both uniform across layers:
`drop_kv_heads` removes whole KV groups — a KV head together with every query head that reads it
(the KV cache shrinks too); `drop_query_heads` removes the same number of query heads from every
group, keeping every KV head (groups get smaller). A group's score is the sum of its query
heads' scores. Layers go by angular distance: `layer_method` "each" drops the layers whose output
is closest to their input (ShortGPT), "block" drops the contiguous block of n layers whose input
and output are closest (Gromov et al.).
"""

from __future__ import annotations

import torch

from edgecompress.compress.llm.config import LayerMethod, LMPruneConfig
from edgecompress.compress.llm.families import Shape, shape_of
from edgecompress.compress.llm.importance import Scores, score_decoder
from edgecompress.compress.llm.load import parameter_count
from edgecompress.compress.llm.metrics import leading_tokens
from edgecompress.compress.llm.surgery import cut_ffn, cut_heads, drop_layers, unit_indices

__all__ = ["LMPruneConfig", "LayerMethod", "heads_to_keep", "layers_to_keep", "prune_lm"]


def layers_to_keep(config: LMPruneConfig, hidden: torch.Tensor | None, n: int) -> list[int]:
    """The layers kept, from `hidden` (Scores.hidden) when they are chosen by distance."""
    if config.keep_layers is not None:
        return sorted(config.keep_layers)
    if not config.drop_layers:
        return list(range(n))
    if config.layer_method == "each":  # distance between each layer's input and output
        each = torch.stack([hidden[i, i + 1] for i in range(n)])
        dropped = set(torch.argsort(each, stable=True)[:config.drop_layers].tolist())
    else:  # the block [l, l + k) whose input and output are closest
        k = config.drop_layers
        start = min(range(n - k + 1), key=lambda i: (hidden[i, i + k].item(), i))
        dropped = set(range(start, start + k))
    return [i for i in range(n) if i not in dropped]


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Sorted indices of the `keep` highest scores (ties: lower index first)."""
    order = torch.argsort(-scores, stable=True)[:keep]
    return torch.sort(order).values


def heads_to_keep(config: LMPruneConfig, scores: torch.Tensor, shape: Shape):
    """(query heads kept, KV heads kept) per layer from head scores (L, heads)."""
    group = shape.heads // shape.kv_heads
    queries, kvs = [], []
    for row in scores:
        grouped = row.view(shape.kv_heads, group)  # query j reads KV head j // group
        if config.drop_kv_heads:
            kv = _top(grouped.sum(1), shape.kv_heads - config.drop_kv_heads)
            q = unit_indices(kv, group)
        else:
            kv = torch.arange(shape.kv_heads)
            q = torch.cat([g * group + _top(grouped[g], group - config.drop_query_heads)
                           for g in range(shape.kv_heads)])
        queries.append(q)
        kvs.append(kv)
    return queries, kvs


def calibration_batches(tokenizer, texts, config: LMPruneConfig) -> list[torch.Tensor]:
    """input_ids (1, <= max_length) per calibration text, BOS first when the tokenizer adds it."""
    bos = leading_tokens(tokenizer)
    batches = []
    for text in texts[:config.samples]:
        ids = bos + tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > 1:
            batches.append(torch.tensor([ids[:config.max_length]]))
    return batches


def prune_lm(model, tokenizer, texts, config: LMPruneConfig) -> dict:
    """Prune `model` in place as `config` says, scoring on calibration `texts`; returns what was
    kept and the scores that chose it (JSON-ready). Raises FieldError for cuts the model
    cannot take, before any calibration."""
    shape = shape_of(model.config)
    config.check_model(shape)
    scores: Scores | None = None
    if config.needs_scores:
        batches = calibration_batches(tokenizer, texts, config)
        heads = bool(config.drop_kv_heads or config.drop_query_heads)
        scores = score_decoder(model, batches, heads=heads)
    before = parameter_count(model)
    report = {"config": config.to_json(), "before": shape.to_json(), "params_before": before}
    if config.drop_kv_heads or config.drop_query_heads:
        queries, kvs = heads_to_keep(config, scores.heads, shape)
        cut_heads(model, queries, kvs)
        report["heads_kept"] = [q.tolist() for q in queries]
        report["kv_heads_kept"] = [kv.tolist() for kv in kvs]
    if config.drop_ffn:
        keep = [_top(row, shape.ffn - config.drop_ffn) for row in scores.ffn]
        cut_ffn(model, keep)
        report["ffn_kept_count"] = shape.ffn - config.drop_ffn
    keep_layers = layers_to_keep(config, None if scores is None else scores.hidden, shape.layers)
    if len(keep_layers) != shape.layers:
        drop_layers(model, keep_layers)
    if scores is not None:
        n = shape.layers
        report["layer_distance"] = [round(scores.hidden[i, i + 1].item(), 6) for i in range(n)]
    report.update(layers_kept=keep_layers, after=shape_of(model.config).to_json(),
                  params_after=parameter_count(model))
    return report


def prune_checkpoint(model: str, texts, config: LMPruneConfig, out, *,
                     dataset: str | None = None, split: str | None = None) -> dict:
    """Load decoder `model` (registry name, .gguf or checkpoint dir), prune it on calibration
    `texts` and write it to folder `out` atomically: a checkpoint the plain transformers class
    reloads plus prune_report.json, whose `source` names the registry model it came from.
    Returns that report. Raises UserError for a model that cannot be loaded."""
    from edgecompress.compress.llm.load import (
        LoadedLM,
        load_tokenizer,
        load_weights,
        resolve_lm,
        save_lm,
    )
    from edgecompress.compress.llm.sources import PRUNE_REPORT, source_model
    from edgecompress.fsutil import atomic_directory, atomic_write_json

    path = resolve_lm(model)
    tokenizer = load_tokenizer(path)
    loaded = LoadedLM(load_weights(path), tokenizer, path, model)
    report = {"model": model, "source": source_model(model), "dataset": dataset,
              "split": split if dataset is not None else None,
              **prune_lm(loaded.model, tokenizer, texts, config)}
    with atomic_directory(out) as tmp:
        save_lm(loaded, tmp)
        atomic_write_json(tmp / PRUNE_REPORT, report)
    return report
