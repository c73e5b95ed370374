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


# Values that a later step reads, refused by the recipe parser or the checks before run.json,
# the marker or the lock is written (before: keep_layers = [0, 99] wrote both and printed two
# lines; fresh:layers=0 passed --dry-run; a vocabulary corpus's column was read only after
# fine-tuning and distillation).
LATER_VALUES = [
    ("keep_layers_absent", "\n[prune]\nkeep_layers = [0, 99]\n",
     "key 'prune.keep_layers': layer 99 does not exist"),
    ("drop_heads_absent", '\n[prune]\ndrop_heads = [[7, [0]]]\n',
     "key 'prune.drop_heads': layer 7"),
    ("student_fresh_zero", '\n[distill]\nstudent = "fresh:layers=0"\n', "layers must be >= 1"),
    ("student_fresh_key", '\n[distill]\nstudent = "fresh:depth=2"\n', "expected keys"),
    ("student_layers_absent", '\n[distill]\nstudent = "layers:0,9"\n', "layer 9 does not exist"),
    ("student_broken_checkpoint", '\n[distill]\nstudent = "{config_list}"\n',
     "expected a JSON object"),
    ("vocab_corpus_missing", '\n[prune]\nvocab_corpus = "{root}/nowhere.csv"\n',
     "prune.vocab_corpus"),
    ("vocab_corpus_no_text", '\n[prune]\nvocab_corpus = "{no_text}"\n', "no column 'text'"),
    ("vocab_corpus_column_absent",
     '\n[prune]\nvocab_corpus = "{no_text}"\nvocab_corpus_text_col = "body"\n',
     "no column 'body'"),
    ("vocab_corpus_txt_column",
     '\n[prune]\nvocab_corpus = "{txt}"\nvocab_corpus_text_col = "review"\n',
     "a .txt file has no columns"),
    ("vocab_column_without_corpus", '\n[prune]\nvocab_corpus_text_col = "review"\n',
     "prune.vocab_corpus_text_col"),
]


@pytest.fixture(scope="module")
def later_recipes(world, tmp_path_factory):
    from tests.adversarial.worldfiles import _recipe

    folder = tmp_path_factory.mktemp("later-recipes")
    names = {"config_list": world.models["config_list"], "root": folder,
             "no_text": world.data["no_text"], "txt": world.data["txt"]}
    paths = {}
    for key, body, _ in LATER_VALUES:
        recipe = _recipe(world.models["bert"], world.data["csv"], body.format(**names))
        paths[key] = folder / f"{key}.toml"
        paths[key].write_text(recipe)
    return paths


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("key, said", [(k, s) for k, _, s in LATER_VALUES],
                         ids=[k for k, _, _ in LATER_VALUES])
def test_value_a_later_step_reads_is_refused_before_anything_is_written(
        key, said, dry, later_recipes, tmp_path, expect_refusal):
    expect_refusal(["run", later_recipes[key], "--out", tmp_path / "run",
                    *(["--dry-run"] if dry else [])], said)
