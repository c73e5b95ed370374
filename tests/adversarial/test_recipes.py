"""Bad recipes to `run` and `run --dry-run`: refused in one line before run.json (or anything
else) is written, whether the problem is in the TOML, the model, the data or the labels."""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import cases

# (recipe key, what the line says); every one runs as `run` and as `run --dry-run`
BAD_RECIPES = [
    ("broken_toml", "not valid TOML"), ("unknown_key", "unknown key 'recipe.colour'"),
    ("no_model", "key 'model'"), ("no_targets", "key 'targets'"),
    ("unknown_target", "moon-base"), ("dup_target", "'x86-cpu' is listed twice"),
    ("epochs_word", "finetune.epochs"), ("unknown_stage_key", "prune.width"),
    ("scheme_target", "quantize.schemes.x86-cpu"), ("max_drop_negative", "quantize.max_drop"),
    ("bench_zero", "bench.runs"), ("label_map_list", "key 'label_map'"),
    ("label_map_finetune", "not used with [finetune]"), ("missing_model", "model not found"),
    ("missing_data", "file not found"), ("no_tokenizer", "no tokenizer files"),
    ("config_list", "expected a JSON object"), ("one_class", "single class"),
    ("label_names", "--label-map"), ("label_map_unknown", "'zzz', which is not a label"),
    ("embedding_model", "no classification head"), ("no_test_split", "empty test split"),
    ("bad_student", "distill.student"), ("unknown_dataset", "unknown dataset 'imdb-huge'"),
]

RUN = cases(
    *[(f"run-{key}", lambda w, t, key=key: ["run", w.recipes[key], "--out", t / "run"], said)
      for key, said in BAD_RECIPES],
    *[(f"dry-run-{key}", lambda w, t, key=key: ["run", w.recipes[key], "--out", t / "run",
                                                "--dry-run"], said)
      for key, said in BAD_RECIPES],
    ("run-missing-recipe", lambda w, t: ["run", t / "none.toml"], "recipe not found"),
    ("run-out-file", lambda w, t: ["run", w.recipes["label_names"], "--out", w.a_file],
     "is a file"),
)


@pytest.mark.parametrize("build, said, code", RUN)
def test_bad_recipe_is_refused_before_anything_is_written_when_run(build, said, code, world,
                                                                   tmp_path, expect_refusal):
    expect_refusal(build(world, tmp_path), said, code)
