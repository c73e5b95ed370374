from __future__ import annotations

import pytest

from edgecompress.compress.prune import schedule
from edgecompress.compress.prune.config import PruneConfig, parse_drop_heads, parse_nm
from edgecompress.errors import UserError

SCORES = [[0.1, 0.2, 0.9, 1.0], [1.0, 1.0, 1.0, 1.0]]


def test_least_important_removed_when_allocating_per_layer():
    assert schedule.allocate(SCORES, 0.5, "layer") == {0: [0, 1], 1: [0, 1]}


def test_layers_get_different_counts_when_allocating_globally():
    plan = schedule.allocate(SCORES, 0.5, "global")  # remove 4 of 8
    assert sum(len(v) for v in plan.values()) == 4
    # per-layer L2-normalised: layer 0 -> .07 .15 .66 .73, layer 1 -> .5 each
    assert plan[0] == [0, 1] and len(plan[1]) == 2


def test_one_unit_kept_per_layer_when_fraction_is_high():
    plan = schedule.allocate(SCORES, 0.99, "global")
    assert [4 - len(plan.get(i, [])) for i in range(2)] == [1, 1]


def test_every_other_layer_kept_when_dropping_half_without_scores():
    assert schedule.layers_to_keep(6, 0.5) == [1, 3, 5]


def test_most_important_layers_kept_when_scores_given():
    assert schedule.layers_to_keep(4, 0.5, [0.3, 0.0, 0.9, 0.1]) == [0, 2]


def test_budget_met_when_fraction_solved():
    per_head, per_neuron = schedule.head_params(32, 8), schedule.neuron_params(32)
    f = schedule.budget_fraction(10_000, 10_000 - 3 * per_head, [4, 4], [64, 64], 32, 8)
    removed = round(f * 8) * per_head + round(f * 128) * per_neuron
    assert removed >= 3 * per_head and f < 0.5


def test_user_error_when_budget_out_of_reach():
    with pytest.raises(UserError, match="out of reach"):
        schedule.budget_fraction(100_000, 10, [4, 4], [64, 64], 32, 8)


@pytest.mark.parametrize("kwargs", [dict(heads=1.0), dict(ffn=-0.1), dict(layers=1.5),
                                    dict(sparsity=1.0), dict(scope="everywhere"),
                                    dict(heads=0.5, target_params=100),
                                    dict(layers=0.5, keep_layers=(1,)), dict(nm=(2, 2))])
def test_value_error_when_config_invalid(kwargs):
    with pytest.raises(ValueError):
        PruneConfig(**kwargs)


def test_specs_parsed_when_well_formed():
    assert parse_drop_heads("0:1,2; 3:0") == ((0, (1, 2)), (3, (0,)))
    assert parse_nm("2:4") == (2, 4)
    with pytest.raises(ValueError):
        parse_nm("2-4")
