"""Architecture support as data: every family loads, and the ones whose layers can be cut are
pruned by the same surgery — removing a head equals masking it, shapes survive a reload — while
the others are refused in one line that names the family and why."""

import copy

import pytest
import torch

from edgecompress.compress.models.arch import FAMILIES, VISION_FAMILIES, blocks, family_of
from edgecompress.compress.models.inspection import inspect_model
from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.prune.surgery import (
    keep_layers,
    layer_shapes,
    remove_heads,
    remove_neurons,
)
from edgecompress.errors import UserError
from tests.compress.prune.conftest import logits
from tests.models import FAMILY_NAMES, save_tiny, tiny_family

PRUNABLE = [name for name in FAMILY_NAMES if not FAMILIES[name].prunable]
REFUSED = [name for name in FAMILY_NAMES if FAMILIES[name].prunable]


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {name: save_tiny(tiny_family(name), root / name) for name in FAMILY_NAMES}


def test_every_family_has_an_adapter_when_listed_in_the_matrix():
    # the text families here; ViT / DeiT run through tests/compress/vision
    assert set(FAMILY_NAMES) == set(FAMILIES) - set(VISION_FAMILIES)
    assert set(VISION_FAMILIES) <= set(FAMILIES)
    assert REFUSED == ["mobilebert", "modernbert"]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_loads_with_the_same_logits_when_saved_and_reloaded(family_dirs, name):
    loaded = load_model(family_dirs[name])
    assert family_of(loaded.module.hf).name == name
    assert torch.equal(logits(loaded), logits(tiny_family(name)))
    info = inspect_model(loaded)
    assert len(info.layers) == 2 and all(layer.heads == 4 for layer in info.layers)
    assert info.family == name
    assert ("prune heads/ffn" in info.stages) == (name in PRUNABLE)
    assert name in PRUNABLE or any("pruning:" in note for note in info.notes)


@pytest.mark.parametrize("name", PRUNABLE)
def test_removing_a_head_equals_masking_it_when_family_is_prunable(name):
    loaded = tiny_family(name)
    masked = copy.deepcopy(loaded)
    block = blocks(masked)[0]
    with torch.no_grad():  # head 1 of layer 0 contributes nothing through the output projection
        block.output.weight[:, block.head_dim:2 * block.head_dim] = 0
    remove_heads(loaded, {0: [1]})
    torch.testing.assert_close(logits(loaded), logits(masked), atol=1e-6, rtol=0)
    assert layer_shapes(loaded)["heads"][0] == 3


@pytest.mark.parametrize("name", PRUNABLE)
def test_pruned_shapes_and_logits_survive_a_reload_when_heads_and_ffn_are_cut(name, tmp_path):
    loaded = tiny_family(name)
    remove_heads(loaded, {0: [1, 2]})
    remove_neurons(loaded, {0: [0, 5, 9]})
    expected = logits(loaded)
    save_model(loaded, tmp_path)
    reloaded = load_model(tmp_path)
    assert layer_shapes(reloaded) == layer_shapes(loaded)
    assert layer_shapes(reloaded)["heads"][0] == 2 and layer_shapes(reloaded)["ffn"][0] == 61
    assert torch.equal(logits(reloaded), expected)


def test_albert_keeps_one_shared_layer_and_fewer_repetitions_when_layers_are_dropped(tmp_path):
    loaded = tiny_family("albert")
    assert len(blocks(loaded)) == 1  # one layer shared across depth
    keep_layers(loaded, [1])
    assert loaded.module.hf.config.num_hidden_layers == 1
    save_model(loaded, tmp_path)
    reloaded = load_model(tmp_path)
    assert reloaded.module.hf.config.num_hidden_layers == 1
    assert torch.equal(logits(reloaded), logits(loaded))
    assert len(inspect_model(reloaded).layers) == 1


@pytest.mark.parametrize("name", REFUSED)
def test_pruning_is_refused_in_one_line_naming_the_family_when_layers_cannot_be_cut(name):
    with pytest.raises(UserError, match=f"cannot prune {name}: .*yet"):
        remove_heads(tiny_family(name), {0: [1]})


def _export(name: str, target: str, scheme: str, out):
    import dataclasses

    from edgecompress.compress.evaluation.artifacts import export_artifact
    from edgecompress.targets import load_profile

    profile = dataclasses.replace(load_profile(target), scheme=scheme)
    return export_artifact(tiny_family(name), profile, out, source=name)


def test_deberta_relative_attention_exports_to_onnx_with_parity_when_fp32(tmp_path):
    manifest = _export("deberta-v2", "x86-cpu", "fp32", tmp_path)
    assert manifest["parity"]["max_abs_diff"] <= manifest["parity"]["tolerance"]
    assert manifest["parity"]["agreement"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("target, scheme", [("x86-cpu", "fp32"), ("x86-cpu", "dynamic-int8"),
                                            ("arm64-phone", "fp32"),
                                            ("arm64-phone", "dynamic-int8")])
@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_exports_through_the_parity_gate_when_targeted(name, target, scheme,
                                                                    tmp_path):
    manifest = _export(name, target, scheme, tmp_path)
    parity = manifest["parity"]
    assert parity["agreement"] >= parity["min_agreement"]
    assert (tmp_path / manifest["artifact"]).stat().st_size > 0
