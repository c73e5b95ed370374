"""Bad dataset tables (split_col, one file per split) in recipes and bad --split-col / split-file
specs on the commands: one line, exit 2, nothing written, every file as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial.conftest import cases


def _write(path: Path, *lines: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _rows(prefix: str, n: int, labels=("neg", "pos")) -> list[str]:
    return [f"{prefix} sentence {i},{labels[i % len(labels)]}" for i in range(n)]


@pytest.fixture(scope="session")
def tables(world) -> dict[str, str]:
    """Split files and recipes whose dataset table is wrong in one way each, in the world."""
    d = world.root / "split-data"
    files = {
        "train": _write(d / "train.csv", "review,verdict", *_rows("train", 20)),
        "test": _write(d / "test.csv", "review,verdict", *_rows("test", 6)),
        "test_no_text": _write(d / "test-no-text.csv", "text,verdict", *_rows("t", 6)),
        "test_no_label": _write(d / "test-no-label.csv", "review,label", *_rows("t", 6)),
        "test_new_label": _write(d / "test-new-label.csv", "review,verdict",
                                 *_rows("t", 6, ("neg", "meh"))),
        "folds": _write(d / "folds.csv", "review,verdict,fold",
                        *(f"{row},{'train' if i < 16 else 'holdout'}"
                          for i, row in enumerate(_rows("f", 20)))),
    }
    columns = 'text_col = "review", label_col = "verdict"'
    bodies = {
        "unknown_split_col": f'{{ path = "folds.csv", {columns}, split_col = "nope" }}',
        "bad_split_values": f'{{ path = "folds.csv", {columns}, split_col = "fold" }}',
        "missing_file": f'{{ train = "train.csv", test = "gone.csv", {columns} }}',
        "test_no_text": f'{{ train = "train.csv", test = "test-no-text.csv", {columns} }}',
        "test_no_label": f'{{ train = "train.csv", test = "test-no-label.csv", {columns} }}',
        "test_new_label": f'{{ train = "train.csv", test = "test-new-label.csv", {columns} }}',
        "unknown_key": f'{{ train = "train.csv", valid = "test.csv", {columns} }}',
        "no_test": f'{{ train = "train.csv", {columns} }}',
        "split_col_with_files": f'{{ train = "train.csv", test = "test.csv", {columns}, '
                                'split_col = "fold" }',
    }
    for name, table in bodies.items():
        files[f"recipe_{name}"] = _write(
            d / f"{name}.toml", 'name = "bad"', f'model = "{world.models["bert"]}"',
            f"dataset = {table}", 'targets = ["x86-cpu"]', "",
            "[quantize]", 'schemes = { x86-cpu = "fp32" }')
    return files


# (recipe, what the line says); each runs as `run` and as `run --dry-run`
BAD_TABLES = [
    ("unknown_split_col", "no split column 'nope'"),
    ("bad_split_values", "split values ['holdout'] in column 'fold'"),
    ("missing_file", "gone.csv: file not found"),
    ("test_no_text", "test-no-text.csv: no column 'review'"),
    ("test_no_label", "test-no-label.csv: no column 'verdict'"),
    ("test_new_label", "label 'meh'"),
    ("unknown_key", "unknown key 'dataset.valid'"),
    ("no_test", "dataset.test"),
    ("split_col_with_files", "dataset.split_col"),
]

RECIPES = cases(
    *[(f"run-{key}", lambda t, tmp, key=key: ["run", t[f"recipe_{key}"], "--out", tmp / "run"],
       said) for key, said in BAD_TABLES],
    *[(f"dry-run-{key}", lambda t, tmp, key=key: ["run", t[f"recipe_{key}"], "--out",
                                                  tmp / "run", "--dry-run"], said)
      for key, said in BAD_TABLES],
)


def _files(t, *names: str) -> str:
    return ",".join(f"{name.split('_')[0]}={t[name]}" for name in names)


_COLUMNS = ("--text-col", "review", "--label-col", "verdict")

COMMANDS = cases(
    ("eval-split-col-unknown", lambda t, tmp, w: [
        "eval", w.bert, "--dataset", t["folds"], *_COLUMNS, "--split-col", "nope"],
     "no split column 'nope'"),
    ("eval-split-files-new-label", lambda t, tmp, w: [
        "eval", w.bert, "--dataset", _files(t, "train", "test_new_label"), *_COLUMNS],
     "label 'meh'"),
    ("eval-split-files-no-test", lambda t, tmp, w: [
        "eval", w.bert, "--dataset", _files(t, "train"), *_COLUMNS], "no test=FILE"),
    ("eval-split-files-split-col", lambda t, tmp, w: [
        "eval", w.bert, "--dataset", _files(t, "train", "test"), *_COLUMNS, "--split-col",
        "fold"], "split_col applies to one file"),
    ("quantize-split-col-values", lambda t, tmp, w: [
        "quantize", w.bert, "--target", "x86-cpu", "--dataset", t["folds"], *_COLUMNS,
        "--split-col", "fold", "--out", tmp / "q"], "'holdout'"),
    ("prune-split-files-missing", lambda t, tmp, w: [
        "prune", w.bert, "--heads", "0.5", "--dataset", f"train={t['train']},test={tmp / 'x.csv'}",
        *_COLUMNS, "--out", tmp / "p"], "x.csv: file not found"),
    ("finetune-split-col-registry", lambda t, tmp, w: [
        "finetune", w.bert, "--dataset", "rt-polarity", "--split-col", "fold", "--out",
        tmp / "ft", "--max-steps", "1"], "split_col apply to .csv/.jsonl"),
)


@pytest.mark.parametrize("build, said, code", RECIPES)
def test_bad_dataset_table_is_refused_before_anything_is_written_when_run(
        build, said, code, tables, tmp_path, expect_refusal):
    expect_refusal(build(tables, tmp_path), said, code)


@pytest.mark.parametrize("build, said, code", COMMANDS)
def test_bad_split_option_is_refused_in_one_line_when_given_to_a_command(
        build, said, code, tables, world, tmp_path, expect_refusal):
    expect_refusal(build(tables, tmp_path, world), said, code)


# -- wording (issue 26): a folder named like a data file is said to be a folder, not described
# as an image set

@pytest.fixture(scope="session")
def folder_named_csv(world) -> dict[str, str]:
    d = world.root / "folder-named-csv"
    (d / "x.csv").mkdir(parents=True)
    (d / "x.jsonl").mkdir()
    recipe = _write(d / "recipe.toml", 'name = "bad"', f'model = "{world.models["bert"]}"',
                    f'dataset = "{d / "x.csv"}"', 'targets = ["x86-cpu"]', "",
                    "[quantize]", 'schemes = { x86-cpu = "fp32" }')
    return {"csv": str(d / "x.csv"), "jsonl": str(d / "x.jsonl"), "recipe": recipe,
            "train": str(world.data["csv"])}


FOLDERS = cases(
    ("eval-folder-named-csv", lambda f, tmp, w: ["eval", w.bert, "--dataset", f["csv"]],
     "x.csv is a folder, not a CSV file"),
    ("eval-folder-named-jsonl", lambda f, tmp, w: ["eval", w.bert, "--dataset", f["jsonl"]],
     "x.jsonl is a folder, not a JSONL file"),
    ("eval-split-file-folder", lambda f, tmp, w: [
        "eval", w.bert, "--dataset", f"train={f['train']},test={f['csv']}"],
     "x.csv is a folder, not a CSV file"),
    ("finetune-folder-named-csv", lambda f, tmp, w: [
        "finetune", w.bert, "--dataset", f["csv"], "--out", tmp / "ft", "--max-steps", "1"],
     "x.csv is a folder, not a CSV file"),
    ("run-folder-named-csv", lambda f, tmp, w: ["run", f["recipe"], "--out", tmp / "run"],
     "x.csv is a folder, not a CSV file"),
    ("dry-run-folder-named-csv", lambda f, tmp, w: ["run", f["recipe"], "--out", tmp / "run",
                                                    "--dry-run"],
     "x.csv is a folder, not a CSV file"),
)


@pytest.mark.parametrize("build, said, code", FOLDERS)
def test_a_folder_named_like_a_data_file_is_refused_as_a_folder(
        build, said, code, folder_named_csv, world, tmp_path, expect_refusal):
    line = expect_refusal(build(folder_named_csv, tmp_path, world), said, code)
    assert "image" not in line
