from __future__ import annotations

import torch

from edgecompress.compress.models.arch import blocks
from edgecompress.compress.prune.importance import (
    Samples,
    gradient_importance,
    layer_importance,
    magnitude_importance,
)
from tests.models import SENTENCES


def test_dead_head_and_neuron_score_zero_when_their_outputs_are_zeroed(fresh):
    first = blocks(fresh)[0]
    head_dim = first.head_dim
    with torch.no_grad():
        first.output.weight[:, head_dim:2 * head_dim] = 0.0  # head 1 writes nothing
        first.ffn_out.weight[:, 7] = 0.0  # neuron 7 writes nothing
    scores = gradient_importance(fresh, Samples(tuple(SENTENCES), (1, 0, 1, 0), batch_size=2))
    assert scores.heads[0][1] == 0.0 and min(scores.heads[0][i] for i in (0, 2, 3)) > 0
    assert scores.ffn[0][7] == 0.0 and len(scores.ffn[1]) == 64
    assert scores.label_source == "data" and scores.samples == 4


def test_teacher_labels_used_when_samples_unlabelled(fresh):
    scores = gradient_importance(fresh, Samples(tuple(SENTENCES), None))
    assert scores.label_source == "teacher"
    assert all(p.requires_grad for p in fresh.module.parameters())  # restored afterwards


def test_magnitude_scores_have_model_shape_when_no_data(fresh):
    scores = magnitude_importance(fresh)
    assert [len(h) for h in scores.heads] == [4, 4] and [len(f) for f in scores.ffn] == [64, 64]


def test_one_score_per_layer_when_scoring_layers(fresh):
    assert len(layer_importance(fresh, Samples(tuple(SENTENCES), None))) == 2
