"""Loading checkpoints whose layers were pruned to their own shapes."""

import torch

from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.prune.surgery import layer_shapes, remove_heads, remove_neurons
from tests.compress.prune.conftest import logits
from tests.models import tiny_bert


def test_load_model_reads_pruned_shapes_when_checkpoint_pruned(tmp_path):
    model = tiny_bert()
    remove_heads(model, {0: [1]})
    remove_neurons(model, {1: [0, 5]})
    save_model(model, tmp_path)
    reloaded = load_model(tmp_path)
    assert layer_shapes(reloaded) == {"heads": [3, 4], "ffn": [64, 62]}
    assert torch.equal(logits(reloaded), logits(model))


def test_embedding_view_drops_the_head_when_pruned_classifier_loaded_as_encoder(tmp_path):
    model = tiny_bert()
    remove_heads(model, {1: [0, 2]})
    save_model(model, tmp_path)
    encoder = load_model(tmp_path, task="embedding")
    assert encoder.task == "embedding" and encoder.labels == ()
    assert layer_shapes(encoder)["heads"] == [4, 2]
