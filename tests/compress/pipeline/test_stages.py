"""The stage table and seeds: the best seed is chosen on dev, never on test."""

import json

import pytest
from rich.console import Console

from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import run_recipe
from edgecompress.compress.pipeline.stages import STAGES, best_of_seeds, get_stage
from edgecompress.errors import UserError
from tests.conftest import write_recipe


def test_every_pipeline_stage_is_registered_once_when_the_run_module_is_imported():
    assert {"finetune", "prune", "vocab", "distill", "export", "eval", "bench"} <= set(STAGES)
    with pytest.raises(ValueError, match="unknown stage 'quantise'.*known: bench"):
        get_stage("quantise")


def test_best_of_seeds_picks_best_dev_not_best_test_when_they_disagree():
    runs = [{"seed": 0, "output": "a", "dev": 0.80, "test": 0.90},
            {"seed": 1, "output": "b", "dev": 0.85, "test": 0.70},
            {"seed": 2, "output": "c", "dev": 0.85, "test": 0.80}]
    best = best_of_seeds(runs)
    assert best["chosen"]["seed"] == 1  # best dev; the tie with seed 2 goes to the lower seed
    assert best["test_mean"] == pytest.approx(0.80)
    assert best["test_std"] == pytest.approx(0.10)
    assert [r["seed"] for r in best["seeds"]] == [0, 1, 2] and "output" not in best["seeds"][0]


def test_best_of_seeds_reports_zero_spread_when_one_seed():
    best = best_of_seeds([{"seed": 3, "output": "a", "dev": 0.5, "test": None}])
    assert best["chosen"]["seed"] == 3 and best["test_mean"] is None and best["dev_std"] == 0.0


def test_recipe_refuses_seeds_that_are_not_positive_integers(tmp_path, tiny_bert_dir,
                                                             sentiment_csv):
    extra = '\n[distill]\nstudent = "layers:1"\nseeds = 0\n'
    with pytest.raises(UserError, match="key 'distill.seeds': expected a positive integer"):
        load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, extra))


def test_distill_seeds_train_each_seed_and_keep_the_best_dev_when_seeds_is_two(
        tmp_path, tiny_bert_dir, sentiment_csv):
    extra = ('\n[distill]\nstudent = "layers:1"\nseeds = 2\n\n[distill.train]\nepochs = 1\n'
             'batch_size = 8\nlearning_rate = 1e-3\nmax_length = 32\nseed = 5\n')
    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, extra,
                                      targets=("x86-cpu",)))
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    record = json.loads((out / "stages" / "distill" / "stage.json").read_text())
    seeds = record["metrics"]["seeds"]["seeds"]
    assert [s["seed"] for s in seeds] == [5, 6]
    chosen = record["metrics"]["chosen_seed"]
    assert chosen == max(seeds, key=lambda s: (s["dev"], -s["seed"]))["seed"]
    assert record["output"].endswith(f"checkpoint-seed{chosen}")
    assert all((out / "stages" / "distill" / f"checkpoint-seed{s}").is_dir() for s in (5, 6))
