"""What happens to the data: rows cut at the model's max length per split, test rows the training
split already holds; said by `run --dry-run`, `run` and `finetune` before any work."""

import json
import types

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.data.audit import (
    data_lines,
    duplicates,
    normalize,
    recipe_data_lines,
    split_truncation,
)
from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.data.datasets import Split, TextDataset
from edgecompress.compress.evaluation.evaluate import truncation
from tests.models import tokenizer

LONG = " ".join(["word"] * 300)  # ~300 tokens


def _dataset(train, test, dev=("a dev row",)) -> TextDataset:
    splits = {name: Split(tuple(texts), tuple(i % 2 for i in range(len(texts))))
              for name, texts in (("train", train), ("dev", dev), ("test", test))}
    return TextDataset("toy", "classification", ("neg", "pos"), types.MappingProxyType(splits))


def test_normalize_makes_case_spacing_and_unicode_width_differences_the_same_row():
    assert normalize("  A  Film\u3000ＦＵＮ. ") == normalize("a film fun.") == "a film fun."
    assert normalize("a film") != normalize("a film!")


def test_truncation_counts_rows_longer_than_max_length_with_special_tokens_when_cut():
    texts = ["short one", LONG, "word " * 6]  # 8 tokens with [CLS] / [SEP]
    cut = truncation(tokenizer(), texts, 8)
    assert cut == {"max_length": 8, "rows": 1, "share": pytest.approx(1 / 3)}
    assert truncation(tokenizer(), texts, 7)["rows"] == 2
    assert truncation(tokenizer(), [], 8) == {"max_length": 8, "rows": 0, "share": 0.0}


def test_split_truncation_gives_each_nonempty_split_and_none_for_images():
    per_split = split_truncation(_dataset([LONG, "x"], [LONG, LONG, "y", "z"]), tokenizer(), 128)
    assert per_split["train"] == {"max_length": 128, "rows": 1, "share": 0.5, "n": 2}
    assert per_split["test"]["rows"] == 2 and per_split["dev"]["rows"] == 0
    images = types.SimpleNamespace(modality="image", splits={})
    assert split_truncation(images, tokenizer(), 128) == {}


def test_duplicates_counts_test_rows_whose_normalized_text_is_in_train():
    data = _dataset(["A great film.", "dull"], ["a  great FILM.", "dull", "new", "dull!"])
    assert duplicates(data) == {"split": "test", "against": "train", "rows": 2, "n": 4}
    assert duplicates(_dataset(["x"], [])) is None  # an empty test split: nothing to say


def test_data_lines_warn_about_overlap_and_give_truncation_per_split():
    data = _dataset(["dup row", LONG, "a"], ["dup row", LONG + " more", "b", "c"])
    lines = data_lines(data, tokenizer(), 128)
    assert lines == [
        "rows longer than 128 tokens, cut (the model sees only their first 128): train 1 of 3 "
        "(33.3%), dev none of 1, test 1 of 4 (25.0%)",
        "warning: 1 of 4 test rows (25.0%) also appear in the train split (same text after "
        "lower-casing and collapsing spaces): on them accuracy measures memory, not "
        "generalisation"]
    clean = data_lines(_dataset(["a"], ["b"]), tokenizer(), 128)
    assert clean[-1] == "train/test overlap: none of the 1 test rows appears in the train split"


def _csv(path, rows):
    path.write_text("text,label,split\n" + "".join(f"{t},{y},{s}\n" for t, y, s in rows))
    return path


@pytest.fixture()
def overlap_csv(tmp_path):
    rows = [(f"train sentence {i}", "pos" if i % 2 else "neg", "train") for i in range(12)]
    rows += [(f"dev sentence {i}", "pos" if i % 2 else "neg", "dev") for i in range(4)]
    rows += [("Train  Sentence 1", "pos", "test"), ("train sentence 2", "neg", "test"),
             (LONG, "pos", "test"), ("test sentence", "neg", "test")]
    return _csv(tmp_path / "overlap.csv", rows)


def test_recipe_data_lines_use_the_targets_input_length_when_given_a_recipe(tiny_bert_dir,
                                                                              overlap_csv):
    recipe = types.SimpleNamespace(model=str(tiny_bert_dir), targets=("x86-cpu",),
                                   data=lambda: DataRef(str(overlap_csv)))
    lines = recipe_data_lines(recipe)
    assert len(lines) == 2
    assert "longer than 128 tokens" in lines[0] and "test 1 of 4 (25.0%)" in lines[0]
    assert lines[1].startswith("warning: 2 of 4 test rows (50.0%) also appear in the train")


def _recipe(tmp_path, model, data) -> str:
    path = tmp_path / "recipe.toml"
    path.write_text(f'name = "audit"\nmodel = "{model}"\ndataset = "{data}"\n'
                    'targets = ["x86-cpu"]\n\n[quantize]\nschemes = { x86-cpu = "fp32" }\n')
    return str(path)


def test_run_dry_run_prints_the_truncation_and_overlap_lines_and_writes_nothing(
        tiny_bert_dir, overlap_csv, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", _recipe(tmp_path, tiny_bert_dir, overlap_csv),
                                      "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "rows longer than 128 tokens, cut" in result.output
    assert "warning: 2 of 4 test rows (50.0%) also appear in the train split" in result.output
    assert not out.exists()
    as_json = CliRunner().invoke(app, ["run", _recipe(tmp_path, tiny_bert_dir, overlap_csv),
                                       "--out", str(out), "--dry-run", "--json"])
    checks = json.loads(as_json.stdout)["checks"]
    assert any(line.startswith("warning: 2 of 4 test rows") for line in checks)


def test_finetune_prints_the_overlap_warning_before_training(tiny_bert_dir, overlap_csv,
                                                             tmp_path):
    result = CliRunner().invoke(app, ["finetune", str(tiny_bert_dir), "--dataset",
                                      str(overlap_csv), "--out", str(tmp_path / "ft"),
                                      "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    assert "warning: 2 of 4 test rows (50.0%) also appear in the train split" in result.output


@pytest.mark.parametrize("max_length", [8, 16, 128])
def test_truncation_reading_prefixes_agrees_with_whole_texts_when_texts_are_long_or_odd(
        max_length):
    from edgecompress.compress.evaluation.evaluate import token_lengths

    texts = [LONG, "x" * 3000, "猫" * 900, "é " * 700, "a\nb " * 400, "short", "9" * 2000,
             " ".join(["unbelievably"] * 200), "word " * (max_length - 3)]
    whole = int((token_lengths(tokenizer(), texts, 100_000) > max_length).sum())
    assert truncation(tokenizer(), texts, max_length)["rows"] == whole


def test_a_run_prints_the_data_lines_and_its_report_says_the_overlap(tiny_bert_dir,
                                                                     sentiment_csv, tmp_path):
    from tests.conftest import write_recipe

    out = tmp_path / "run"
    recipe = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("x86-cpu",))
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "train/test overlap: none of the 8 test rows appears in the train split" in \
        result.output
    teacher = json.loads((out / "teacher" / "eval.json").read_text())
    assert teacher["duplicates"] == {"split": "test", "against": "train", "rows": 0, "n": 8}
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["duplicates"]["n"] == 8
    assert "Train/test overlap: none of the 8 test rows" in (out / "report.md").read_text()
