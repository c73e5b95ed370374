"""The search's rules on hand-made trial results: front, choice under budgets, nearest misses,
the joint best, Optuna constraints; and the [search] table's key paths."""

from edgecompress.compress.search.front import (
    REFUSED_EXCESS,
    Budgets,
    chosen,
    constraints,
    front,
    joint_best,
    nearest,
    objectives,
    target_points,
)
from edgecompress.compress.search.space import DEFAULT, apply


def _result(number, **targets):
    return {"number": number, "state": "complete",
            "targets": {t: ({"refused": "parity"} if row is None else
                            {"accuracy": row[0], "p50_ms": row[1], "size_bytes": row[2] * 1e6,
                             "delta": row[3]})
                        for t, row in targets.items()}}


RESULTS = [
    _result(0, a=(0.80, 10.0, 8.0, -1.0), b=(0.79, 3.0, 8.0, -2.0)),
    _result(1, a=(0.82, 20.0, 9.0, 0.0), b=None),
    _result(2, a=(0.78, 12.0, 9.5, -3.0), b=(0.80, 4.0, 8.0, -1.0)),  # a: dominated by 0
    _result(3, a=(0.75, 5.0, 2.0, -6.0), b=(0.70, 2.0, 2.0, -10.0)),
]


def test_front_keeps_trials_no_other_beats_on_accuracy_latency_and_size_at_once():
    assert front(target_points(RESULTS, "a")) == [0, 1, 3]
    assert front(target_points(RESULTS, "b")) == [0, 2, 3]  # trial 1 refused on b


def test_the_chosen_trial_is_the_most_accurate_within_every_budget():
    rows = target_points(RESULTS, "a")
    assert chosen(rows, Budgets()) == 1
    assert chosen(rows, Budgets(latency_ms=15)) == 0
    assert chosen(rows, Budgets(latency_ms=15, max_drop=0.5)) is None
    assert chosen(rows, Budgets(size_mb=3)) == 3


def test_nearest_ranks_misses_by_relative_excess():
    rows = target_points(RESULTS, "a")
    assert nearest(rows, Budgets(latency_ms=4.0), k=2) == [3, 0]  # 25 % over, then 150 %


def test_joint_best_needs_every_target_within_budget():
    assert joint_best(RESULTS, ("a", "b"), Budgets()) == 0  # trial 1 is refused on b
    assert joint_best(RESULTS, ("a", "b"), Budgets(max_drop=2.5)) == 0
    assert joint_best(RESULTS, ("a", "b"), Budgets(max_drop=0.5)) is None


def test_constraints_are_three_per_target_and_refusals_are_far_outside():
    budgets = Budgets(latency_ms=10, size_mb=8, max_drop=1)
    assert constraints(RESULTS[0], ("a", "b"), budgets) == [0.0, 0.0, 0.0, -7.0, 0.0, 1.0]
    assert constraints(RESULTS[1], ("a", "b"), budgets)[3:] == [REFUSED_EXCESS] * 3
    assert objectives(RESULTS[1]) == (0.82, 20.0, 9.0)  # the measured targets only


def test_apply_sets_nested_keys_and_default_removes_one():
    data = {"prune": {"heads": 0.25}, "quantize": {"schemes": {"x86-cpu": "fp32"}}}
    out = apply(data, {"prune.heads": DEFAULT, "quantize.schemes.rpi5": "dynamic-int8",
                       "distill.train.epochs": 2})
    assert out == {"prune": {}, "quantize": {"schemes": {"x86-cpu": "fp32",
                                                         "rpi5": "dynamic-int8"}},
                   "distill": {"train": {"epochs": 2}}}
    assert data["prune"] == {"heads": 0.25}  # the recipe table is not changed


def test_joint_best_breaks_accuracy_ties_like_chosen_so_one_target_agrees():
    tied = [_result(0, a=(0.80, 9.0, 8.0, 0.0)), _result(1, a=(0.80, 7.0, 8.0, 0.0)),
            _result(2, a=(0.80, 7.0, 6.0, 0.0))]
    assert chosen(target_points(tied, "a"), Budgets()) == 2  # faster, then smaller
    assert joint_best(tied, ("a",), Budgets()) == 2


def test_baseline_is_the_recipes_own_values_when_every_key_can_take_them():
    from edgecompress.compress.search.space import Param, SearchSpace

    space = SearchSpace((Param("prune.keep_layers", choices=("[1, 3, 5]", "[1, 5]")),
                         Param("quantize.schemes.rpi5", choices=('"default"', '"fp16"')),
                         Param("prune.heads", low=0.0, high=0.5, step=0.25)))
    table = {"prune": {"keep_layers": [1, 3, 5], "heads": 0.25}}
    assert space.baseline(table) == {"prune.keep_layers": "[1, 3, 5]",
                                     "quantize.schemes.rpi5": '"default"', "prune.heads": 0.25}
    assert space.baseline({"prune": {"keep_layers": [0, 2], "heads": 0.25}}) is None
    assert space.baseline({"prune": {"keep_layers": [1, 5], "heads": 0.3}}) is None  # off-step


def test_trial_recipes_get_absolute_paths_when_the_dataset_is_one_file_per_split(tmp_path):
    from edgecompress.compress.search.study import _absolute

    recipe = tmp_path / "r.toml"
    data = _absolute(recipe, {"model": "m", "dataset": {"train": "a.csv", "test": "b.csv",
                                                        "text_col": "t"}})
    assert data["dataset"] == {"train": str(tmp_path / "a.csv"), "test": str(tmp_path / "b.csv"),
                               "text_col": "t"}
