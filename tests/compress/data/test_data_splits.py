"""Where a user dataset's splits come from: a named split column, or one file per split
(edgecompress.compress.data.datasets, compress/data/userfiles.py, compress/data/dataref.py,
compress/identity.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.data.datasets import load_dataset
from edgecompress.compress.identity import content_digest
from edgecompress.errors import UserError


def _write(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(prefix: str, n: int, labels=("no", "yes")) -> list[tuple[str, str]]:
    return [(f"{prefix} {i}", labels[i % len(labels)]) for i in range(n)]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """train 20 / dev 4 / test 6 rows, columns prompt / is_injection."""
    header = ["prompt", "is_injection"]
    return {name: _write(tmp_path / f"{name}.csv", header, _rows(name, n))
            for name, n in (("train", 20), ("dev", 4), ("test", 6))}


def _spec(files: dict[str, Path], *names: str) -> str:
    return ",".join(f"{name}={files[name]}" for name in names)


COLUMNS = {"text_col": "prompt", "label_col": "is_injection"}


def test_load_csv_reads_the_named_split_column_when_split_col_given(tmp_path):
    rows = [(f"s {i}", "ab"[i % 2], ("train", "dev", "test")[i % 3], "test") for i in range(12)]
    path = _write(tmp_path / "folds.csv", ["text", "label", "fold", "split"], rows)
    loaded = load_dataset(str(path), split_col="fold")
    assert loaded.split_sizes() == {"train": 4, "dev": 4, "test": 4}
    assert loaded.split("dev").texts == ("s 1", "s 4", "s 7", "s 10")
    assert not loaded.drawn_splits


def test_load_csv_names_the_column_and_lists_columns_when_split_col_absent(tmp_path):
    path = _write(tmp_path / "x.csv", ["text", "label"], _rows("s", 10))
    with pytest.raises(UserError, match=r"no split column 'fold'; columns present: text, label"):
        load_dataset(str(path), split_col="fold")


def test_load_csv_names_bad_values_and_column_when_split_col_holds_other_names(tmp_path):
    rows = [(f"s {i}", "ab"[i % 2], "validation" if i == 3 else "train") for i in range(8)]
    path = _write(tmp_path / "x.csv", ["text", "label", "fold"], rows)
    with pytest.raises(UserError, match=r"split values \['validation'\] in column 'fold' are "
                                        r"not in train, dev, test"):
        load_dataset(str(path), split_col="fold")


def test_split_files_give_exactly_their_rows_per_split_when_all_three_given(files):
    loaded = load_dataset(_spec(files, "train", "dev", "test"), **COLUMNS)
    assert loaded.split_sizes() == {"train": 20, "dev": 4, "test": 6}
    assert loaded.split("test").texts == tuple(f"test {i}" for i in range(6))
    assert loaded.split("dev").texts == tuple(f"dev {i}" for i in range(4))
    assert loaded.labels == ("no", "yes")
    assert loaded.split("test").labels == tuple(i % 2 for i in range(6))
    assert not loaded.drawn_splits and "one file per split" in loaded.split_line()


def test_split_files_draw_dev_from_train_and_keep_test_whole_when_no_dev_file(files):
    loaded = load_dataset(_spec(files, "train", "test"), **COLUMNS)
    assert loaded.split_sizes() == {"train": 18, "dev": 2, "test": 6}
    train_texts = {f"train {i}" for i in range(20)}
    assert set(loaded.split("dev").texts) <= train_texts
    assert set(loaded.split("train").texts) | set(loaded.split("dev").texts) == train_texts
    assert loaded.split("test").texts == tuple(f"test {i}" for i in range(6))
    assert "dev drawn from train.csv" in loaded.split_line()
    again = load_dataset(_spec(files, "train", "test"), **COLUMNS)
    assert again.split("dev").texts == loaded.split("dev").texts  # seeded


def test_split_files_ignore_a_split_column_inside_the_test_file_when_given(tmp_path, files):
    rows = [(f"t {i}", "no", "train") for i in range(5)]
    test = _write(tmp_path / "tagged.csv", ["prompt", "is_injection", "split"], rows)
    loaded = load_dataset(f"train={files['train']},test={test}", **COLUMNS)
    assert len(loaded.split("test")) == 5  # the file is the test split, whole
    assert loaded.split("test").labels == (0,) * 5  # a single class is fine outside train


def _with_test(header: list[str], rows: list[tuple], name: str):
    """A spec of the train file and a test file written with `header` and `rows`."""
    return lambda f, t: f"train={f['train']},test={_write(t / name, header, rows)}"


@pytest.mark.parametrize("make, message", [
    (lambda f, t: f"train={f['train']},test={t / 'gone.csv'}", "gone.csv: file not found"),
    (_with_test(["text", "is_injection"], _rows("o", 4), "other.csv"),
     "other.csv: no column 'prompt'"),
    (_with_test(["prompt"], [("a",)], "nolab.csv"), "nolab.csv: no column 'is_injection'"),
    (_with_test(["prompt", "is_injection"], _rows("n", 4, ("no", "maybe")), "new.csv"),
     "new.csv: data row 2 has label 'maybe'.*train file train.csv does not have"),
    (lambda f, t: f"train={f['train']}", "no test=FILE"),
    (lambda f, t: f"train={f['train']},valid={f['dev']},test={f['test']}",
     "'valid=.*' is not train=FILE"),
    (lambda f, t: f"train={f['train']},test={f['test']},test={f['dev']}", "given twice"),
])
def test_split_files_refuse_in_one_line_naming_the_file_when_bad(files, tmp_path, make,
                                                                  message):
    with pytest.raises(UserError, match=message):
        load_dataset(make(files, tmp_path), **COLUMNS)


def test_split_files_refuse_a_split_column_when_split_col_given(files):
    with pytest.raises(UserError, match="split_col applies to one file"):
        load_dataset(_spec(files, "train", "test"), split_col="fold", **COLUMNS)


def test_split_files_digest_changes_when_any_one_file_is_edited(files):
    spec = _spec(files, "train", "dev", "test")
    before = content_digest(spec)
    assert content_digest(spec) == before
    seen = {before}
    for name in ("dev", "test"):
        with files[name].open("a") as handle:
            handle.write("one more row,yes\n")
        after = content_digest(spec)
        assert after not in seen, name
        seen.add(after)


def test_dataref_options_carry_split_col_only_when_given():
    assert DataRef("x.csv").options() == {}
    assert DataRef("x.csv", split_col="fold").options() == {"split_col": "fold"}


def test_registry_name_refuses_split_col_when_given():
    with pytest.raises(UserError, match="split_col apply to .csv/.jsonl files"):
        load_dataset("rt-polarity", split_col="fold")
