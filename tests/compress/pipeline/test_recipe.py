import pytest

from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.errors import UserError
from tests.conftest import write_recipe


def test_demo_recipe_covers_every_shipped_target_and_prunes_vocabulary_after_distilling():
    from pathlib import Path

    from edgecompress.compress.pipeline.demo import demo_recipe_path
    from edgecompress.compress.pipeline.plan import training_steps
    from edgecompress.targets import list_profiles
    from edgecompress.targets.profiles import OPTIONAL_FORMATS

    recipe = load_recipe(demo_recipe_path())
    assert recipe.model == "minilm-l6" and recipe.dataset == "rt-polarity"
    # every target the default install runs (the demo must not need an optional extra), but
    # npu-a16w8: the demo keeps its five targets and its 15-minute budget; a16w8 is opt-in
    assert sorted(recipe.targets) == sorted(p.name for p in list_profiles()
                                            if p.format not in OPTIONAL_FORMATS
                                            and p.name != "npu-a16w8")
    steps, final, teacher = training_steps(recipe, Path("run"))
    assert [step.id for step in steps] == ["finetune", "prune", "distill", "vocab"]
    assert steps[1].config.vocab_corpus is None and steps[3].config.vocab_corpus == "rt-polarity"
    assert final == "@vocab" and teacher == "@finetune"
    assert recipe.max_drop_for("edgetpu") is None and recipe.max_drop_for("npu-int8") is None


def test_recipe_orders_stages_prune_before_distill_whatever_the_file_order(tmp_path,
                                                                          tiny_bert_dir,
                                                                          sentiment_csv):
    extra = '\n[distill]\nstudent = "pruned"\n\n[prune]\nheads = 0.5\n\n[finetune]\nepochs = 1\n'
    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, extra))
    assert [name for name, _ in recipe.stages] == ["finetune", "prune", "distill"]
    assert recipe.settings("prune") == {"heads": 0.5}
    assert recipe.scheme_for("x86-cpu") == "fp32"


@pytest.mark.parametrize("edit, message", [
    (lambda text: text + "\n[prune]\nhedas = 0.5\n", "unknown key 'prune.hedas'"),
    (lambda text: text + "\n[prune]\nheads = 1.5\n", "key 'prune.heads': is the fraction"),
    (lambda text: text + "\n[finetune]\nepochs = 0\n", "key 'finetune.epochs': must be"),
    (lambda text: text + '\n[finetune]\nepochs = "three"\n',
     "key 'finetune.epochs': expected an integer, got 'three'"),
    (lambda text: text.replace("runs = 3", "runs = 0"), "bench.runs"),
    (lambda text: "colour = 'red'\n" + text, "unknown key 'recipe.colour'"),
])
def test_recipe_errors_name_the_file_and_the_key(edit, message, tmp_path, tiny_bert_dir,
                                                 sentiment_csv):
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    path.write_text(edit(path.read_text()))
    with pytest.raises(UserError) as err:
        load_recipe(path)
    assert "tiny.toml" in str(err.value) and message in str(err.value)


def test_recipe_refuses_an_unknown_target(tmp_path, tiny_bert_dir, sentiment_csv):
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("moon-base",))
    with pytest.raises(UserError, match="moon-base"):
        load_recipe(path)


def test_recipe_refuses_a_scheme_for_a_target_it_does_not_have(tmp_path, tiny_bert_dir,
                                                              sentiment_csv):
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    path.write_text(path.read_text().replace('schemes = {', 'schemes = { "rpi5" = "fp32", '))
    with pytest.raises(UserError, match="quantize.schemes.rpi5"):
        load_recipe(path)


def test_recipe_refuses_invalid_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(UserError, match="not valid TOML"):
        load_recipe(bad)


def test_recipe_refuses_a_scheme_its_target_cannot_run_when_parsed(tmp_path, tiny_bert_dir,
                                                                  sentiment_csv):
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    path.write_text(path.read_text().replace('"x86-cpu" = "fp32"', '"x86-cpu" = "int3"'))
    with pytest.raises(UserError, match=r"quantize.schemes.x86-cpu.*cannot run scheme 'int3'"):
        load_recipe(path)
