"""Structured pruning of decoders: config, choice, surgery (edgecompress.compress.llm.prune)."""

from __future__ import annotations

import pytest
import torch

from edgecompress.compress.config import FieldError
from edgecompress.compress.llm.families import DECODERS, get_path, layer_list, shape_of
from edgecompress.compress.llm.load import load_lm, save_lm
from edgecompress.compress.llm.prune import LMPruneConfig, heads_to_keep, layers_to_keep, prune_lm
from tests.compress.llm.tiny import FAMILIES, TEXTS, tiny_lm

IDS = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46, 47, 48]])
GQA = [f for f in FAMILIES if not DECODERS[f].head_cut]


def _logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _weight(layer, path):  # (out, in) for Linear and GPT-2's Conv1D alike
    module = get_path(layer, path)
    return module.weight if isinstance(module, torch.nn.Linear) else module.weight.t()


@pytest.mark.parametrize("family", FAMILIES)
def test_prune_lm_leaves_logits_identical_when_nothing_is_removed(family):
    lm = tiny_lm(family)
    expected = _logits(lm.model)
    report = prune_lm(lm.model, lm.tokenizer, TEXTS, LMPruneConfig(keep_layers=(0, 1, 2)))
    assert report["layers_kept"] == [0, 1, 2] and report["params_after"] == report["params_before"]
    assert torch.equal(_logits(lm.model), expected)


@pytest.mark.parametrize("family", GQA)
def test_cut_shapes_are_exact_when_a_kv_group_and_ffn_neurons_are_removed(family):
    lm = tiny_lm(family)
    prune_lm(lm.model, lm.tokenizer, TEXTS,
             LMPruneConfig(drop_kv_heads=1, drop_ffn=16, samples=4))
    family_ = DECODERS[family]
    for layer in layer_list(lm.model):
        if family_.fused:  # qkv rows: 2 query heads + 1 K + 1 V head of 8; gate+up rows
            assert _weight(layer, family_.query).shape == (4 * 8, 32)
            assert _weight(layer, family_.gate).shape == (2 * 48, 32)
        else:
            assert _weight(layer, family_.query).shape == (16, 32)
            assert _weight(layer, family_.key).shape == _weight(layer, family_.value).shape \
                == (8, 32)
            assert _weight(layer, family_.gate).shape == _weight(layer, family_.up).shape \
                == (48, 32)
        assert _weight(layer, family_.output).shape == (32, 16)
        assert _weight(layer, family_.down).shape == (32, 48)
    shape = shape_of(lm.model.config)
    assert (shape.heads, shape.kv_heads, shape.head_dim, shape.ffn) == (2, 1, 8, 48)


@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_checkpoint_reloads_with_identical_logits_when_saved(family, tmp_path):
    lm = tiny_lm(family)
    heads = {} if DECODERS[family].head_cut else {"drop_query_heads": 1}
    config = LMPruneConfig(drop_layers=1, drop_ffn=24, samples=4, **heads)
    report = prune_lm(lm.model, lm.tokenizer, TEXTS, config)
    assert len(report["layers_kept"]) == 2 and report["params_after"] < report["params_before"]
    save_lm(lm, tmp_path)
    again = load_lm(tmp_path)
    assert shape_of(again.model.config) == shape_of(lm.model.config)
    types = getattr(again.model.config, "layer_types", None)  # sliding / full per layer
    assert types is None or len(types) == 2
    assert torch.equal(_logits(again.model), _logits(lm.model))


def _zero_heads(model, family: str, queries_kept) -> None:
    """Zero the output-projection columns of every query head not kept (what cutting it does)."""
    path = DECODERS[family].output
    with torch.no_grad():
        for layer, kept in zip(layer_list(model), queries_kept):
            weight = get_path(layer, path).weight  # (hidden, heads * head_dim)
            mask = torch.zeros(4, dtype=torch.bool)
            mask[kept] = True
            weight[:, (~mask).repeat_interleave(8)] = 0


@pytest.mark.parametrize("family", GQA)
@pytest.mark.parametrize("cut", [{"drop_kv_heads": 1}, {"drop_query_heads": 1}])
def test_head_cut_equals_zeroing_those_heads_when_groups_are_respected(family, cut):
    # the pruned model must compute what the full model computes with the cut heads silenced:
    # this fails if a kept query head were paired with the wrong KV head after the cut
    lm, masked = tiny_lm(family), tiny_lm(family)
    report = prune_lm(lm.model, lm.tokenizer, TEXTS, LMPruneConfig(samples=4, **cut))
    _zero_heads(masked.model, family, report["heads_kept"])
    assert torch.allclose(_logits(lm.model), _logits(masked.model), atol=1e-5)
    if "drop_query_heads" in cut:  # one query head left in each of the two groups
        assert all(len(q) == 2 and q[0] < 2 <= q[1] for q in report["heads_kept"])


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2"])
def test_ffn_cut_equals_zeroing_those_neurons_when_down_columns_are_zeroed(family):
    lm, masked = tiny_lm(family), tiny_lm(family)
    prune_lm(lm.model, lm.tokenizer, TEXTS, LMPruneConfig(drop_ffn=20, samples=4))
    down = DECODERS[family].down
    with torch.no_grad():
        for cut, full in zip(layer_list(lm.model), layer_list(masked.model)):
            kept_w, full_w = _weight(cut, down), _weight(full, down)  # (hidden, ffn)
            kept = [int((full_w.t() == col).all(1).nonzero()[0]) for col in kept_w.t()]
            gone = sorted(set(range(64)) - set(kept))
            module = get_path(full, down)
            if isinstance(module, torch.nn.Linear):
                module.weight[:, gone] = 0
            else:
                module.weight[gone] = 0
    assert torch.allclose(_logits(lm.model), _logits(masked.model), atol=1e-5)


def test_layers_to_keep_drops_closest_layers_when_method_is_each():
    hidden = torch.zeros(5, 5)
    for i, d in enumerate([0.5, 0.1, 0.3, 0.05]):  # distance of layer i's input to its output
        hidden[i, i + 1] = hidden[i + 1, i] = d
    assert layers_to_keep(LMPruneConfig(drop_layers=2), hidden, 4) == [0, 2]


def test_layers_to_keep_drops_closest_block_when_method_is_block():
    hidden = torch.ones(5, 5)
    hidden[1, 3] = 0.2  # layers 1..2 together change the stream least
    hidden[0, 2] = 0.3
    config = LMPruneConfig(drop_layers=2, layer_method="block")
    assert layers_to_keep(config, hidden, 4) == [0, 3]


def test_heads_to_keep_keeps_best_group_when_kv_heads_are_cut():
    shape = shape_of(tiny_lm("llama").model.config)
    scores = torch.tensor([[1.0, 1.0, 5.0, 0.1]])  # group 1 (heads 2, 3) sums higher
    queries, kvs = heads_to_keep(LMPruneConfig(drop_kv_heads=1), scores, shape)
    assert queries[0].tolist() == [2, 3] and kvs[0].tolist() == [1]


def test_check_model_refuses_cuts_when_the_model_cannot_take_them():
    shape = shape_of(tiny_lm("llama").model.config)
    for config, field in ((LMPruneConfig(drop_kv_heads=2), "drop_kv_heads"),
                          (LMPruneConfig(drop_query_heads=2), "drop_query_heads"),
                          (LMPruneConfig(drop_layers=3), "drop_layers"),
                          (LMPruneConfig(drop_ffn=64), "drop_ffn"),
                          (LMPruneConfig(keep_layers=(0, 3)), "keep_layers")):
        with pytest.raises(FieldError) as err:
            config.check_model(shape)
        assert err.value.field == field


def test_check_model_says_why_when_gpt2_heads_are_asked_for():
    shape = shape_of(tiny_lm("gpt2").model.config)
    with pytest.raises(FieldError, match="ties its attention width"):
        LMPruneConfig(drop_query_heads=1).check_model(shape)


@pytest.mark.parametrize("values, field", [
    ({"drop_layers": 1, "keep_layers": (0,)}, "keep_layers"),
    ({"drop_kv_heads": 1, "drop_query_heads": 1}, "drop_query_heads"),
    ({"drop_ffn": -1}, "drop_ffn"),
    ({"layer_method": "random"}, "layer_method"),
    ({"keep_layers": (1, 1)}, "keep_layers")])
def test_lm_prune_config_refuses_values_when_invalid(values, field):
    with pytest.raises(FieldError) as err:
        LMPruneConfig(**values)
    assert err.value.field == field
