"""[prune] rounds = N: prune a little, distill, prune again (plan.round_settings), on the spine."""

import json
from pathlib import Path

import pytest

from edgecompress.compress.pipeline.plan import training_steps
from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.errors import UserError
from tests.conftest import write_recipe

ROUNDS = '\n[prune]\nffn = 0.5\nheads = 0.5\nkeep_layers = [1]\nrounds = 2\n' \
         '\n[distill]\nkd_weight = 1.0\n\n[distill.train]\nepochs = 3\nbatch_size = 8\n'


def test_two_rounds_cut_half_the_total_each_and_split_the_epochs(tmp_path, tiny_bert_dir,
                                                                sentiment_csv):
    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, ROUNDS))
    steps, final, _ = training_steps(recipe, Path("run"))
    assert [s.id for s in steps] == ["prune-round1", "distill-round1", "prune", "distill"]
    first, second = steps[0].config, steps[2].config
    # round 1 removes a quarter of the neurons; round 2 a third of the three quarters left:
    # together half of the recipe model's, as one cut of 0.5 would
    assert (first.ffn, second.ffn) == (0.25, pytest.approx(1 / 3, abs=1e-6))
    assert (1 - first.ffn) * (1 - second.ffn) == pytest.approx(0.5, abs=1e-6)
    # keep_layers numbers the recipe model's layers: round 1 only
    assert first.keep_layers == (1,) and second.keep_layers is None
    assert [steps[i].config.distill.train.epochs for i in (1, 3)] == [1, 2]  # 3 = 1 + 2
    assert steps[1].inputs[1] == ("student", "@prune-round1")
    assert steps[2].inputs == (("model", "@distill-round1"),) and final == "@distill"
    assert steps[1].inputs[0] == steps[3].inputs[0]  # every round learns from the one teacher


def test_one_round_is_the_plain_plan(tmp_path, tiny_bert_dir, sentiment_csv):
    one = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                                   ROUNDS.replace("rounds = 2", "rounds = 1")))
    steps, _, _ = training_steps(one, Path("run"))
    assert [s.id for s in steps] == ["prune", "distill"] and steps[0].config.ffn == 0.5


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("rounds = 2", "rounds = 0"), "'prune.rounds': expected a positive"),
    (lambda t: t.replace("epochs = 3", "epochs = 1"), "2 rounds need at least 2"),
    (lambda t: t.replace("ffn = 0.5\nheads = 0.5\n", "target_params = 1000\n"),
     "prune.target_params cannot be split"),
    (lambda t: t.replace("ffn = 0.5\nheads = 0.5\n", ""), "nothing to cut in rounds"),
    (lambda t: t[:t.index("\n[distill]")], "add that table"),
    (lambda t: t.replace("kd_weight = 1.0", 'kd_weight = 1.0\nstudent = "layers:0"'),
     "add that table"),
])
def test_rounds_that_cannot_run_are_refused_when_the_recipe_is_read(edit, message, tmp_path,
                                                                   tiny_bert_dir, sentiment_csv):
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, edit(ROUNDS))
    with pytest.raises(UserError, match=message):
        load_recipe(path)


def test_a_run_in_rounds_prunes_twice_and_reports_each_round(tmp_path, tiny_bert_dir,
                                                             sentiment_csv):
    from rich.console import Console

    from edgecompress.compress.pipeline.runs import run_recipe

    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                                      ROUNDS.replace("epochs = 3", "epochs = 2"),
                                      targets=("x86-cpu",)))
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))

    full = json.loads((tiny_bert_dir / "config.json").read_text())
    shapes = [json.loads((out / "stages" / s / "stage.json").read_text())["metrics"]["student"]
              for s in ("distill-round1", "distill")]
    # one layer kept; round 1 cut a quarter of the heads and FFN neurons, round 2 cut the
    # distilled round-1 student again, to half of the recipe model's
    ffn, heads = full["intermediate_size"], full["num_attention_heads"]
    assert [s["ffn"] for s in shapes] == [[ffn * 3 // 4], [ffn // 2]]
    assert [s["heads"] for s in shapes] == [[heads * 3 // 4], [heads // 2]]
    report = (out / "report.md").read_text()
    assert "prune (round 1 of 2)" in report and "distill (round 2 of 2)" in report
