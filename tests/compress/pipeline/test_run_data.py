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
    # one file per split
    ('{ train = "a.csv", path = "x.csv" }', "exactly one of path"),
    ('{ train = "a.csv" }', "dataset.test"),
    ('{ test = "a.csv" }', "dataset.train"),
    ('{ train = "a.csv", test = "b.csv", split_col = "fold" }', "dataset.split_col"),
    ('{ train = "a.csv", test = "b.csv", valid = "c.csv" }', "unknown key 'dataset.valid'"),
    ('{ name = "rt-polarity", split_col = "fold" }', "only with a path"),
    ('{ train = "a,b.csv", test = "b.csv" }', "without ','"),
    ('{ train = "", test = "b.csv" }', "dataset.train"),
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


# ---------------------------------------------------------------- split_col, one file per split


def _folded(sentiment_csv, path):
    """The sentiment CSV with columns review / verdict / fold (its split column renamed) and a
    decoy `split` column that says test everywhere."""
    with sentiment_csv.open() as src, path.open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["review", "verdict", "fold", "split"])
        for row in list(csv.reader(src))[1:]:
            writer.writerow([row[0], row[1], row[2], "test"])
    return path


def _per_split(sentiment_csv, folder, names=("train", "dev", "test")):
    """One file per split of the sentiment CSV (columns review / verdict): {split: path}."""
    rows = list(csv.reader(sentiment_csv.open()))[1:]
    files = {}
    for name in names:
        files[name] = folder / f"{name}.csv"
        with files[name].open("w", newline="") as dst:
            writer = csv.writer(dst)
            writer.writerow(["review", "verdict"])
            writer.writerows([row[0], row[1]] for row in rows if row[2] == name)
    return files


def _with_dataset(tmp_path, model, table, extra=""):
    path = write_recipe(tmp_path, model, tmp_path / "placeholder.csv", extra, targets=("x86-cpu",))
    path.write_text(path.read_text().replace(f'dataset = "{tmp_path / "placeholder.csv"}"',
                                             f"dataset = {table}"))
    return path


def test_recipe_with_renamed_columns_and_split_col_runs_end_to_end(tiny_bert_dir, sentiment_csv,
                                                                   tmp_path):
    data = _folded(sentiment_csv, tmp_path / "folded.csv")
    table = ('{ path = "folded.csv", text_col = "review", label_col = "verdict", '
             'split_col = "fold" }')
    recipe = load_recipe(_with_dataset(tmp_path, tiny_bert_dir, table))
    assert (recipe.dataset, recipe.split_col) == (str(data), "fold")
    assert recipe.identity()["split_col"] == "fold"
    lines = validate_inputs(recipe)
    assert "dataset folded: train 24, dev 8, test 8" in lines
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    evaluated = json.loads((out / "artifacts" / "x86-cpu" / "eval.json").read_text())
    assert evaluated["n"] == 8  # the fold column's test rows, not the decoy split column's 40
    records = [json.loads(p.read_text()) for p in (out / "stages").glob("*/stage.json")]
    options = [json.loads(r["inputs"]["dataset options"]) for r in records
               if "dataset options" in r["inputs"]]
    assert options and all(o["split_col"] == "fold" for o in options)


def test_recipe_split_files_give_exactly_those_rows_per_split_in_the_dry_run(tiny_bert_dir,
                                                                            sentiment_csv,
                                                                            tmp_path):
    _per_split(sentiment_csv, tmp_path, ("train", "test"))
    table = '{ train = "train.csv", test = "test.csv", text_col = "review", label_col = "verdict" }'
    recipe = load_recipe(_with_dataset(tmp_path, tiny_bert_dir, table))
    assert recipe.dataset == f"train={tmp_path / 'train.csv'},test={tmp_path / 'test.csv'}"
    lines = validate_inputs(recipe, fetch=False)
    expected = ("dataset train+test: train 22, dev 2, test 8 (one file per split: train "
                "train.csv, dev drawn from train.csv")
    assert any(line.startswith(expected) for line in lines), lines
    assert "  test: neg 4, pos 4" in lines, lines
    data = recipe.data().load()
    assert data.split("test").texts == tuple(row[0] for row in csv.reader(sentiment_csv.open())
                                             if row[2] == "test")


def test_editing_the_test_file_reruns_the_eval_steps_when_split_files(tiny_bert_dir,
                                                                      sentiment_csv, tmp_path):
    from rich.console import Console as RichConsole

    files = _per_split(sentiment_csv, tmp_path)
    table = ('{ train = "train.csv", dev = "dev.csv", test = "test.csv", text_col = "review", '
             'label_col = "verdict" }')
    recipe = load_recipe(_with_dataset(tmp_path, tiny_bert_dir, table))
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    assert json.loads((out / "teacher" / "eval.json").read_text())["n"] == 8
    with files["test"].open("a") as handle:
        handle.write('"a dull, lifeless mess 99",neg\n')
    console = RichConsole(record=True, width=200)
    run_recipe(recipe, out, console)
    printed = console.export_text()
    assert "(rerun: dataset changed)" in printed, printed
    assert json.loads((out / "teacher" / "eval.json").read_text())["n"] == 9  # the new row
    evaluated = json.loads((out / "artifacts" / "x86-cpu" / "eval.json").read_text())
    assert evaluated["n"] == 9


def test_eval_command_reads_the_test_file_whole_when_given_split_files(tiny_bert_dir,
                                                                      sentiment_csv, tmp_path):
    from typer.testing import CliRunner

    from edgecompress.cli import app

    files = _per_split(sentiment_csv, tmp_path, ("train", "test"))
    spec = f"train={files['train']},test={files['test']}"
    result = CliRunner().invoke(app, ["eval", str(tiny_bert_dir), "--dataset", spec, "--text-col",
                                      "review", "--label-col", "verdict", "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)
    assert (evaluated["split"], evaluated["n"]) == ("test", 8)
    folded = _folded(sentiment_csv, tmp_path / "folded.csv")
    result = CliRunner().invoke(app, ["eval", str(tiny_bert_dir), "--dataset", str(folded),
                                      "--text-col", "review", "--label-col", "verdict",
                                      "--split-col", "fold", "--split", "dev", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 8
