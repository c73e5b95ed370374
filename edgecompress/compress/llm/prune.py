"""Structured pruning of a decoder: what to remove (`LMPruneConfig`), chosen from scores on
calibration text (importance.py), cut out physically (surgery.py).

Attention heads respect grouped-query attention in one of two ways, both uniform across layers:
`kv_heads` removes whole KV groups — a KV head together with every query head that reads it
(the KV cache shrinks too); `query_heads` removes the same number of query heads from every
group, keeping every KV head (groups get smaller). A group's score is the sum of its query
heads' scores. Layers go by angular distance: `layer_method` "each" drops the layers whose output
is closest to their input (ShortGPT), "block" drops the contiguous block of n layers whose input
and output are closest (Gromov et al.).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from edgecompress.compress.config import FieldError, check_types
from edgecompress.compress.llm.families import DECODERS, Shape, shape_of
from edgecompress.compress.llm.importance import Scores, score_decoder
from edgecompress.compress.llm.load import parameter_count
from edgecompress.compress.llm.metrics import leading_tokens
from edgecompress.compress.llm.surgery import cut_ffn, cut_heads, drop_layers, unit_indices

LAYER_METHODS = ("each", "block")


@dataclass(frozen=True)
class LMPruneConfig:
    """Counts are of what is removed, per layer for heads and FFN neurons."""

    layers: int = 0  # decoder layers dropped, chosen by angular distance
    keep_layers: tuple[int, ...] | None = None  # or exactly these layers (original numbering)
    layer_method: str = "each"
    kv_heads: int = 0  # KV heads removed from every layer, with their query heads
    query_heads: int = 0  # query heads removed from every KV group of every layer
    ffn: int = 0  # FFN neurons removed from every layer
    samples: int = 32  # calibration texts
    max_length: int = 256  # tokens per calibration text
    seed: int = 0

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("layers", "kv_heads", "query_heads", "ffn"):
            if getattr(self, name) < 0:
                raise FieldError(name, f"must be >= 0, got {getattr(self, name)}")
        for name, low in (("samples", 1), ("max_length", 2)):
            if getattr(self, name) < low:
                raise FieldError(name, f"must be >= {low}, got {getattr(self, name)}")
        if self.layer_method not in LAYER_METHODS:
            raise FieldError("layer_method", f"must be one of {', '.join(LAYER_METHODS)}, got "
                                             f"{self.layer_method!r}")
        if self.keep_layers is not None:
            if self.layers:
                raise FieldError("keep_layers", "give either layers or keep_layers, not both")
            if not self.keep_layers or any(i < 0 for i in self.keep_layers):
                raise FieldError("keep_layers", f"needs layer numbers >= 0, got "
                                                f"{self.keep_layers}")
            if len(set(self.keep_layers)) != len(self.keep_layers):
                raise FieldError("keep_layers", f"lists a layer twice: {self.keep_layers}")
        if self.kv_heads and self.query_heads:
            raise FieldError("query_heads", "give either kv_heads or query_heads, not both")

    @property
    def needs_scores(self) -> bool:
        return bool(self.layers or self.kv_heads or self.query_heads or self.ffn)

    def check_model(self, shape: Shape) -> None:
        """Raise FieldError when the model cannot take these cuts (before any calibration)."""
        family = DECODERS[shape.family]
        if self.keep_layers is not None and max(self.keep_layers) >= shape.layers:
            raise FieldError("keep_layers", f"the model has layers 0..{shape.layers - 1}, got "
                                            f"{max(self.keep_layers)}")
        if self.layers >= shape.layers:
            raise FieldError("layers", f"must leave a layer of {shape.layers}, got {self.layers}")
        if (self.kv_heads or self.query_heads) and family.head_cut:
            raise FieldError("kv_heads" if self.kv_heads else "query_heads", family.head_cut)
        if self.kv_heads >= shape.kv_heads:
            raise FieldError("kv_heads", f"must leave a KV head of {shape.kv_heads}, got "
                                         f"{self.kv_heads}")
        group = shape.heads // shape.kv_heads
        if self.query_heads >= group:
            raise FieldError("query_heads", f"must leave a query head in each group of {group}, "
                                            f"got {self.query_heads}")
        if self.ffn >= shape.ffn:
            raise FieldError("ffn", f"must leave a neuron of {shape.ffn}, got {self.ffn}")

    def to_json(self) -> dict:
        data = asdict(self)
        data["keep_layers"] = None if self.keep_layers is None else list(self.keep_layers)
        return data


def layers_to_keep(config: LMPruneConfig, hidden: torch.Tensor | None, n: int) -> list[int]:
    """The layers kept, from `hidden` (Scores.hidden) when they are chosen by distance."""
    if config.keep_layers is not None:
        return sorted(config.keep_layers)
    if not config.layers:
        return list(range(n))
    if config.layer_method == "each":  # distance between each layer's input and output
        each = torch.stack([hidden[i, i + 1] for i in range(n)])
        dropped = set(torch.argsort(each, stable=True)[:config.layers].tolist())
    else:  # the block [l, l + k) whose input and output are closest
        k = config.layers
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
        if config.kv_heads:
            kv = _top(grouped.sum(1), shape.kv_heads - config.kv_heads)
            q = unit_indices(kv, group)
        else:
            kv = torch.arange(shape.kv_heads)
            q = torch.cat([g * group + _top(grouped[g], group - config.query_heads)
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
        scores = score_decoder(model, batches, heads=bool(config.kv_heads or config.query_heads))
    before = parameter_count(model)
    report = {"config": config.to_json(), "before": shape.to_json(), "params_before": before}
    if config.kv_heads or config.query_heads:
        queries, kvs = heads_to_keep(config, scores.heads, shape)
        cut_heads(model, queries, kvs)
        report["heads_kept"] = [q.tolist() for q in queries]
        report["kv_heads_kept"] = [kv.tolist() for kv in kvs]
    if config.ffn:
        keep = [_top(row, shape.ffn - config.ffn) for row in scores.ffn]
        cut_ffn(model, keep)
        report["ffn_kept_count"] = shape.ffn - config.ffn
    keep_layers = layers_to_keep(config, None if scores is None else scores.hidden, shape.layers)
    if len(keep_layers) != shape.layers:
        drop_layers(model, keep_layers)
    if scores is not None:
        n = shape.layers
        report["layer_distance"] = [round(scores.hidden[i, i + 1].item(), 6) for i in range(n)]
    report.update(layers_kept=keep_layers, after=shape_of(model.config).to_json(),
                  params_after=parameter_count(model))
    return report
