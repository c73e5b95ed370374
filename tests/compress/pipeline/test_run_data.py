"""A recipe's dataset table (a user file's own column names) and label map reach every stage,
and evaluation matches classes by name."""

import csv
import json
import pytest
from rich.console import Console

from edgecompress.compress.pipeline.checks import validate_inputs
from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import run_recipe
from edgecompress.errors import UserError
from tests.conftest import write_recipe
from tests.models import save_tiny, tiny_bert


def _renamed(sentiment_csv, path, labels=None):
    """The sentiment CSV with columns review / verdict / split (and labels renamed)."""
    with sentiment_csv.open() as src, path.open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["review", "verdict", "split"])
        for row in list(csv.reader(src))[1:]:
            writer.writerow([row[0], (labels or {}).get(row[1], row[1]), row[2]])
    return path


def _table_recipe(tmp_path, model, data, extra=""):
    path = write_recipe(tmp_path, model, data, extra, targets=("x86-cpu",))
    text = path.read_text().replace(
        f'dataset = "{data}"',
        f'dataset = {{ path = "{data}", text_col = "review", label_col = "verdict" }}')
    path.write_text(text)
    return path


def _always_positive(directory):
    """A tiny BERT whose class 0 is "positive" and which always predicts it (biased head)."""
    import torch

    loaded = tiny_bert()
    hf = loaded.module.hf
    with torch.no_grad():
        hf.classifier.bias.copy_(torch.tensor([5.0, -5.0]))
    hf.config.id2label = {0: "positive", 1: "negative"}
    hf.config.label2id = {"positive": 0, "negative": 1}
    return save_tiny(loaded, directory)


def _mostly_positive_test(sentiment_csv, path):
    """The sentiment CSV with one 'neg' row left in its test split (4 pos, 1 neg)."""
    with sentiment_csv.open() as src, path.open("w", newline="") as dst:
        rows = list(csv.reader(src))
        writer = csv.writer(dst)
        negatives = 0
        for row in rows:
            negatives += row[1:] == ["neg", "test"]
            if row[1:] != ["neg", "test"] or negatives == 1:
                writer.writerow(row)
    return path


def test_recipe_dataset_table_names_the_columns_for_every_stage(tiny_bert_dir, sentiment_csv,
                                                                tmp_path):
    data = _renamed(sentiment_csv, tmp_path / "reviews.csv")
    extra = '\n[prune]\nheads = 0.25\nimportance = "gradient"\nsamples = 8\n'
    recipe = load_recipe(_table_recipe(tmp_path, tiny_bert_dir, data, extra))
    assert (recipe.text_col, recipe.label_col) == ("review", "verdict")
    lines = validate_inputs(recipe)
    assert any("train 24" in line for line in lines), lines
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    evaluated = json.loads((out / "artifacts" / "x86-cpu" / "eval.json").read_text())
    assert evaluated["n"] == 8
    prune = json.loads((out / "stages" / "prune" / "stage.json").read_text())
    assert json.loads(prune["inputs"]["dataset options"]) == {"label_col": "verdict",
                                                              "text_col": "review"}


def test_recipe_without_the_columns_stops_at_the_missing_text_column(tiny_bert_dir,
                                                                     sentiment_csv, tmp_path):
    data = _renamed(sentiment_csv, tmp_path / "reviews.csv")
    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, data, targets=("x86-cpu",)))
    with pytest.raises(UserError, match="text"):
        validate_inputs(recipe)


@pytest.mark.parametrize("table, message", [
    ('{ path = "x.csv", name = "rt-polarity" }', "exactly one of path"),
    ('{ name = "rt-polarity", text_col = "review" }', "only with a path"),
    ('{ path = "x.csv", text = "review" }', "text"),
    ('{ path = "" }', "dataset.path"),
])
def test_recipe_dataset_table_refuses_what_it_cannot_mean(tmp_path, table, message):
    path = tmp_path / "r.toml"
    path.write_text(f'model = "minilm-l6"\ndataset = {table}\ntargets = ["x86-cpu"]\n')
    with pytest.raises(UserError, match=message):
        load_recipe(path)


def test_eval_matches_classes_by_name_when_the_model_orders_them_otherwise(sentiment_csv,
                                                                           tmp_path):
    from edgecompress.compress.pipeline.commands import evaluate_spec

    # the dataset's classes are (neg, pos); this model calls class 0 "positive" and always
    # predicts it: by name 4 of 5 test rows are right, by position 1 of 5
    model = _always_positive(tmp_path / "named")
    data = _mostly_positive_test(sentiment_csv, tmp_path / "mostly-positive.csv")
    extra = '\nlabel_map = { pos = "positive", neg = "negative" }\n'
    path = write_recipe(tmp_path, model, data, targets=("x86-cpu",))
    path.write_text(path.read_text().replace("targets =", extra.strip() + "\ntargets =", 1))
    recipe = load_recipe(path)
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    teacher = json.loads((out / "teacher" / "eval.json").read_text())
    direct = evaluate_spec(str(model), str(data), split="test",
                           label_map=(("pos", "positive"), ("neg", "negative")))
    assert direct["label_mapping"] == "by name (--label-map)"
    assert (direct["correct"], direct["n"]) == (4, 5)
    assert (teacher["correct"], teacher["n"]) == (4, 5)
    artifact = json.loads((out / "artifacts" / "x86-cpu" / "eval.json").read_text())
    assert (artifact["correct"], artifact["n"]) == (4, 5)
