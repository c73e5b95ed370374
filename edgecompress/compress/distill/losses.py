"""Distillation losses. Each is 0 when the student computes exactly what the teacher computes.

- `soft_kl`: KL(teacher || student) of temperature-softened logits, scaled by T² so its gradient
  keeps the same size as T changes (Hinton et al.).
- `label_ce`: ordinary cross-entropy on hard labels; transfer-set rows (label `SOFT_ONLY`) have
  none and add nothing to it.
- `hidden_mse`: MSE between mapped layers' hidden states over real tokens, through a learned
  projection where the student is narrower than the teacher (TinyBERT).
- `attention_kl`: KL between attention distributions of mapped layers, per head, over real query
  tokens (MiniLM); needs equal head counts in each mapped pair.
- `embedding_cosine` / `embedding_mse`: a sentence encoder's mean-pooled embedding (B, H)
  against the teacher's, through a learned projection where the student is narrower. Both are
  means over rows, so torchrun's sharded batches give the same gradient (distributed.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgecompress.compress.distill.config import DistillConfig
from edgecompress.compress.distill.features import Features

SOFT_ONLY = -2  # the label of a transfer-set row: it learns from the teacher's soft targets only


@dataclass(frozen=True)
class LossPlan:
    """What to compare, resolved once against the models (see students.resolve_plan)."""

    hidden_pairs: tuple[tuple[int, int], ...] = ()  # (student layer, teacher layer)
    attention_pairs: tuple[tuple[int, int], ...] = ()
    notes: tuple[str, ...] = ()  # why something was skipped, for the manifest and the console
    logits: bool = True  # the logit losses (kd, ce) apply: False for a sentence-encoder teacher
    embedding: bool = False  # the embedding losses apply: a sentence-encoder teacher


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Batch-mean KL(softmax(t/T) || softmax(s/T)) · T²; logits (B, C). Returns a scalar."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return kl * temperature ** 2


def label_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (B, C) against class ids (B,). Returns a scalar.

    Rows labelled `SOFT_ONLY` add 0 and still count in the batch mean, so a labelled row weighs
    the same in a batch of transfer rows as in a batch without them (0 for a batch of them).
    """
    soft_only = labels == SOFT_ONLY
    if not bool(soft_only.any()):
        return F.cross_entropy(logits, labels)
    per_row = F.cross_entropy(logits, labels.clamp(min=0), reduction="none")
    return torch.where(soft_only, torch.zeros_like(per_row), per_row).sum() / len(labels)


def _token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-token values (B, S) over real tokens (mask (B, S), 1 = real; None: all)."""
    if mask is None:  # image patches: every token is real
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def hidden_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
               pairs: Sequence[tuple[int, int]], projections: Mapping[str, nn.Module],
               mask: torch.Tensor) -> torch.Tensor:
    """Mean over `pairs` of the per-token MSE between hidden states (B, S, H).

    `projections[str(student_layer)]` maps a narrower student width to the teacher's; pairs
    without one compare directly (equal widths). Returns a scalar.
    """
    losses = []
    for s, t in pairs:
        projected = projections[str(s)](student[s]) if str(s) in projections else student[s]
        per_token = (projected - teacher[t]).pow(2).mean(dim=-1)  # (B, S)
        losses.append(_token_mean(per_token, mask))
    return torch.stack(losses).mean()


def attention_kl(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
                 pairs: Sequence[tuple[int, int]], mask: torch.Tensor) -> torch.Tensor:
    """Mean over `pairs`, heads and real query tokens of KL(teacher row || student row).

    Attentions are (B, heads, S, S) probabilities; padded keys hold ~0 on both sides, and
    xlogy makes 0·log 0 = 0. Returns a scalar.
    """
    losses = []
    for s, t in pairs:
        p_teacher, p_student = teacher[t], student[s]
        log_student = torch.log(p_student.clamp(min=1e-12))
        kl = (torch.xlogy(p_teacher, p_teacher) - p_teacher * log_student).sum(-1)  # (B, h, S)
        losses.append(_token_mean(kl.mean(dim=1), mask))  # mean over heads -> (B, S)
    return torch.stack(losses).mean()


EMBEDDING_PROJECTION = "embedding"  # key of the embedding's projection among the hidden ones


def _project(student: torch.Tensor, projections: Mapping[str, nn.Module]) -> torch.Tensor:
    """`student` (B, H_s) through the learned projection to the teacher's width, if any."""
    if EMBEDDING_PROJECTION in projections:
        return projections[EMBEDDING_PROJECTION](student)
    return student


def embedding_cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over rows of 1 - cos(student row, teacher row); embeddings (B, H). A scalar, 0 when
    every student embedding points where the teacher's does."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)).mean()


def embedding_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over rows and dimensions of the squared difference; embeddings (B, H). A scalar."""
    return (student - teacher).pow(2).mean()


def distill_loss(student: Features, teacher: Features, labels: torch.Tensor,
                 mask: torch.Tensor, config: DistillConfig, plan: LossPlan,
                 projections: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the enabled losses; returns (total, {name: value}) for progress/logs.

    `labels` (B,) are class ids; rows of unlabelled text carry the teacher's argmax already
    (unused for a sentence-encoder teacher).
    """
    parts: dict[str, torch.Tensor] = {}
    if config.kd_weight and plan.logits:
        parts["kd"] = config.kd_weight * soft_kl(student.logits, teacher.logits,
                                                 config.temperature)
    if config.ce_weight and plan.logits:
        parts["ce"] = config.ce_weight * label_ce(student.logits, labels)
    if plan.embedding:
        parts.update(_embedding_parts(student.embedding, teacher.embedding, config, projections))
    if config.hidden_weight and plan.hidden_pairs:
        parts["hidden"] = config.hidden_weight * hidden_mse(
            student.hidden, teacher.hidden, plan.hidden_pairs, projections, mask)
    if config.attention_weight and plan.attention_pairs:
        parts["attention"] = config.attention_weight * attention_kl(
            student.attentions, teacher.attentions, plan.attention_pairs, mask)
    total = torch.stack(list(parts.values())).sum()
    return total, {name: float(value.detach()) for name, value in parts.items()}


def _embedding_parts(student: torch.Tensor, teacher: torch.Tensor, config: DistillConfig,
                     projections: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    projected = _project(student, projections)  # (B, H_teacher)
    parts = {}
    if config.embedding_cosine_weight:
        parts["embedding_cosine"] = config.embedding_cosine_weight * embedding_cosine(
            projected, teacher)
    if config.embedding_mse_weight:
        parts["embedding_mse"] = config.embedding_mse_weight * embedding_mse(projected, teacher)
    return parts
