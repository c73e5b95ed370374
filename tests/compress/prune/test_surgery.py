from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from edgecompress.compress.models.arch import blocks, word_embedding
from edgecompress.compress.models.inspection import inspect_model
from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.prune.importance import gates
from edgecompress.compress.prune.surgery import (
    keep_embedding_rows,
    keep_layers,
    layer_shapes,
    remove_heads,
    remove_neurons,
)
from edgecompress.errors import UserError
from tests.compress.prune.conftest import logits
from tests.models import batch


def test_outputs_bit_identical_when_nothing_removed(fresh):
    before = logits(fresh)
    remove_heads(fresh, {0: [], 1: []})
    remove_neurons(fresh, {0: [], 1: []})
    keep_layers(fresh, [0, 1])
    keep_embedding_rows(fresh, range(word_embedding(fresh).num_embeddings))
    assert torch.equal(logits(fresh), before)


def test_removed_heads_equal_masked_heads_when_heads_removed(fresh):
    parts = blocks(fresh)
    head_gate = [torch.ones(b.heads) for b in parts]
    head_gate[0][1] = 0.0
    head_gate[1][0] = head_gate[1][3] = 0.0
    with gates(parts, head_gate=head_gate):
        masked = logits(fresh)
    remove_heads(fresh, {0: [1], 1: [0, 3]})
    assert torch.allclose(logits(fresh), masked, atol=1e-5)


def test_removed_neurons_equal_masked_neurons_when_neurons_removed(fresh):
    parts = blocks(fresh)
    ffn_gate = [torch.ones(b.ffn) for b in parts]
    ffn_gate[0][:20] = 0.0
    ffn_gate[1][5] = 0.0
    with gates(parts, ffn_gate=ffn_gate):
        masked = logits(fresh)
    remove_neurons(fresh, {0: list(range(20)), 1: [5]})
    assert torch.allclose(logits(fresh), masked, atol=1e-5)


def test_shapes_are_as_asked_when_pruning_non_uniformly(fresh):
    remove_heads(fresh, {0: [0, 1], 1: [3]})
    remove_neurons(fresh, {0: list(range(10)), 1: list(range(0, 60, 2))})
    assert layer_shapes(fresh) == {"heads": [2, 3], "ffn": [54, 34]}
    first, second = blocks(fresh)
    hidden, head_dim = first.query.in_features, first.head_dim
    assert first.query.weight.shape == (2 * head_dim, hidden)
    assert second.value.weight.shape == (3 * head_dim, hidden)
    assert first.output.weight.shape == (hidden, 2 * head_dim)
    assert second.ffn_out.weight.shape == (hidden, 34)
    assert [layer.heads for layer in inspect_model(fresh).layers] == [2, 3]


def test_shapes_and_logits_kept_when_saved_and_reloaded(fresh, tmp_path):
    remove_heads(fresh, {0: [2], 1: [0, 1, 3]})
    remove_neurons(fresh, {1: list(range(40))})
    used = set(batch(fresh)["input_ids"].flatten().tolist())
    keep_embedding_rows(fresh, sorted(used | set(range(1000))))  # ids >= 1000 shift down
    expected = logits(fresh, _renumbered(fresh, used))
    save_model(fresh, tmp_path)
    reloaded = load_model(tmp_path)
    assert layer_shapes(reloaded) == {"heads": [3, 1], "ffn": [64, 24]}
    assert word_embedding(reloaded).num_embeddings == len(used | set(range(1000)))
    assert torch.equal(logits(reloaded, _renumbered(fresh, used)), expected)


def _renumbered(loaded, used: set[int]) -> dict:
    """The shared batch with ids mapped to the rows kept by the test above."""
    new_id = {old: new for new, old in enumerate(sorted(used | set(range(1000))))}
    inputs = batch(loaded)
    ids = inputs["input_ids"]
    return {"input_ids": np.vectorize(new_id.get)(ids).astype(ids.dtype),
            "attention_mask": inputs["attention_mask"]}


def test_one_layer_left_when_keeping_one_layer(fresh, tmp_path):
    remove_heads(fresh, {1: [0]})
    keep_layers(fresh, [1])
    assert layer_shapes(fresh) == {"heads": [3], "ffn": [64]}
    save_model(fresh, tmp_path)
    assert layer_shapes(load_model(tmp_path))["heads"] == [3]


def test_user_error_and_model_untouched_when_all_heads_of_a_layer_removed(fresh):
    before = logits(fresh)
    with pytest.raises(UserError, match="all 4 heads of layer 1"):
        remove_heads(fresh, {0: [0], 1: [0, 1, 2, 3]})
    assert layer_shapes(fresh)["heads"] == [4, 4]
    assert torch.equal(logits(fresh), before)


def test_user_error_when_head_or_layer_missing(fresh):
    with pytest.raises(UserError, match="cannot remove"):
        remove_heads(fresh, {0: [4]})
    with pytest.raises(UserError, match="does not exist"):
        remove_neurons(fresh, {2: [0]})
    with pytest.raises(UserError, match="subset"):
        keep_layers(copy.deepcopy(fresh), [2])
