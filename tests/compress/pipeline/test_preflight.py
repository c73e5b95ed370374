"""Before a run writes: a recipe's dataset columns reach its vocabulary corpus, the checks read
what later steps will read, and one run at a time writes a folder."""

import csv
import json

import pytest
from rich.console import Console

from edgecompress.compress.pipeline.checks import output_lines, run_output_bytes, validate_inputs
from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import run_recipe
from edgecompress.errors import UserError
from edgecompress.fsutil import LOCK_FILE, OUTPUT_MARKER, held_lock
from tests.conftest import write_recipe


def _articles(sentiment_csv, path):
    """The sentiment CSV with its text in column `article` (as a news set names it)."""
    with sentiment_csv.open() as src, path.open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["article", "label", "split"])
        writer.writerows(list(csv.reader(src))[1:])
    return path


def _recipe(tmp_path, model, data, prune: str):
    path = write_recipe(tmp_path, model, data, f"\n[prune]\n{prune}\n", targets=("x86-cpu",))
    path.write_text(path.read_text().replace(
        f'dataset = "{data}"', f'dataset = {{ path = "{data}", text_col = "article" }}'))
    return path


def _prune_settings(recipe):
    return recipe.settings("prune")


def test_vocab_corpus_reads_the_datasets_text_column_when_it_is_the_datasets_file(
        tiny_bert_dir, sentiment_csv, tmp_path):
    data = _articles(sentiment_csv, tmp_path / "news.csv")
    recipe = load_recipe(_recipe(tmp_path, tiny_bert_dir, data, f'vocab_corpus = "{data}"'))
    assert _prune_settings(recipe)["vocab_corpus_text_col"] == "article"
    lines = validate_inputs(recipe)
    assert f"vocabulary corpus {data}: 24 texts (column 'article')" in lines, lines
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    record = json.loads((out / "stages" / "prune" / "stage.json").read_text())
    assert record["config"]["vocab_corpus_text_col"] == "article"
    assert (out / "report.md").is_file() and not (out / LOCK_FILE).exists()


def test_vocab_corpus_keeps_its_own_column_when_the_recipe_names_it(tiny_bert_dir,
                                                                     sentiment_csv, tmp_path):
    data = _articles(sentiment_csv, tmp_path / "news.csv")
    recipe = load_recipe(_recipe(tmp_path, tiny_bert_dir, data,
                                 f'vocab_corpus = "{sentiment_csv}"\nvocab_corpus_text_col = '
                                 '"text"'))
    assert _prune_settings(recipe)["vocab_corpus_text_col"] == "text"
    assert any("(column 'text')" in line for line in validate_inputs(recipe))


def test_vocab_corpus_of_another_file_is_refused_up_front_when_it_lacks_the_text_column(
        tiny_bert_dir, sentiment_csv, tmp_path):
    data = _articles(sentiment_csv, tmp_path / "news.csv")
    other = _articles(sentiment_csv, tmp_path / "other.csv")
    recipe = load_recipe(_recipe(tmp_path, tiny_bert_dir, data, f'vocab_corpus = "{other}"'))
    assert "vocab_corpus_text_col" not in _prune_settings(recipe)
    with pytest.raises(UserError, match="prune.vocab_corpus': vocabulary corpus: .*no column "
                                        "'text'"):
        validate_inputs(recipe, fetch=False)


def test_run_writes_nothing_when_another_process_holds_the_folder(tiny_bert_dir, sentiment_csv,
                                                                 tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                                      targets=("x86-cpu",)))
    out = tmp_path / "run"
    out.mkdir()
    with held_lock(out):
        with pytest.raises(UserError, match="in use by another edgecompress run"):
            run_recipe(recipe, out, Console(quiet=True))
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # no run.json, no marker
    assert not (out / OUTPUT_MARKER).exists()


def test_output_lines_size_the_run_by_its_steps_and_targets(tiny_bert_dir, sentiment_csv,
                                                            tmp_path):
    from edgecompress.fsutil import files_bytes

    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                                      '\n[prune]\nheads = 0.5\n'))
    # one prune checkpoint + 2 targets x (fp32 export + artifact) + one atomic copy
    assert run_output_bytes(recipe) == files_bytes(tiny_bert_dir) * 6
    lines = output_lines(recipe, tmp_path / "run", force=False)
    assert lines[0].startswith(f"output {tmp_path / 'run'}: writable, about ")
    assert not (tmp_path / "run").exists()  # checked, not made


def test_step_identity_of_a_prune_is_unchanged_when_the_corpus_column_is_unset():
    from edgecompress.compress.pipeline.runs import _config_json
    from edgecompress.compress.prune.config import PruneConfig

    assert "vocab_corpus_text_col" not in _config_json(PruneConfig(vocab_corpus="rt-polarity"))
    assert _config_json(PruneConfig(vocab_corpus="a.csv", vocab_corpus_text_col="body"))[
        "vocab_corpus_text_col"] == "body"


def test_vocab_step_after_distill_reads_the_column_when_the_corpus_is_the_datasets_file(
        tiny_bert_dir, sentiment_csv, tmp_path):
    from edgecompress.compress.pipeline.plan import plan_steps

    data = _articles(sentiment_csv, tmp_path / "news.csv")
    path = _recipe(tmp_path, tiny_bert_dir, data, f'vocab_corpus = "{data}"\nheads = 0.25')
    path.write_text(path.read_text() + '\n[distill]\nstudent = "pruned"\n')
    steps = {s.id: s.config for s in plan_steps(load_recipe(path), tmp_path / "run")}
    assert steps["prune"].vocab_corpus is None and steps["prune"].vocab_corpus_text_col is None
    assert (steps["vocab"].vocab_corpus, steps["vocab"].vocab_corpus_text_col) == (str(data),
                                                                                   "article")
