"""Reading the user's own .csv / .jsonl files: rows, the text and label columns, the splits.

A dataset is one file (its rows split by a split column, else drawn here 80/10/10) or one file per
split, named by a spec `train=a.csv,dev=b.csv,test=c.csv` (dev optional: drawn from train). A
split file is its split, whole: it is never split again.

Everything wrong with a file is found here, before any model is loaded, and said in one line that
names the file and the column (or row): unreadable bytes, an over-long field, a ragged CSV row, a
missing or empty value, a NaN label, a label column with a single class.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecompress.errors import UserError

SPLIT_NAMES = ("train", "dev", "test")
SEED = 0
# The csv module refuses fields over 128 KB by default; a long review is still text, so allow
# 16 MB per field and refuse what no encoder could read anyway (MAX_TEXT_CHARS) with a clear line.
FIELD_LIMIT = 16 * 1024 * 1024
MAX_TEXT_CHARS = 100_000
NAN_LABELS = {"nan", "null", "none", "na", "n/a"}


@dataclass(frozen=True)
class UserRows:
    """A user file read and checked: texts, label names and ids (None: unlabelled), splits."""

    texts: list[str]
    names: tuple[str, ...]
    label_ids: list[int] | None
    assigned: list[str]  # each row's split
    drawn: bool  # True when the splits were drawn here (seeded 80/10/10), not read from a column
    note: str = ""  # where the splits come from, when not from one file (split_files)


def _read_csv(path: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    csv.field_size_limit(FIELD_LIMIT)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        body = list(reader)
    except csv.Error as err:
        raise UserError(f"{path}: not valid CSV (line {reader.line_num}: {err})") from None
    columns = [c.strip() for c in header]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise UserError(f"{path}: column {repeated[0]!r} appears twice in the header")
    rows = []
    for number, fields in enumerate(body, start=1):
        if not fields:
            continue  # a blank line
        if len(fields) > len(columns):
            raise UserError(f"{path}: data row {number} has {len(fields)} fields but the header "
                            f"has {len(columns)} ({', '.join(columns)})")
        rows.append(dict(zip(columns, fields)))
    return rows, columns


def _read_jsonl(path: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{number}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: expected a JSON object per line")
        rows.append(row)
    return rows, list(dict.fromkeys(key for row in rows for key in row))


def read_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Return (rows, columns) of a .csv (header row) or .jsonl file; UserError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    rows, columns = (_read_csv if path.suffix == ".csv" else _read_jsonl)(path, text)
    if not rows:
        raise UserError(f"{path}: no data rows (only a header?)")
    return rows, columns


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value))


def column(path: Path, rows: list[dict[str, Any]], columns: list[str], col: str) -> list[Any]:
    """Return the values of column `col`; UserError naming the column or the first bad row."""
    if col not in columns:
        raise UserError(f"{path}: no column {col!r}; columns present: {', '.join(columns)}")
    values = [row.get(col) for row in rows]
    for number, value in enumerate(values, start=1):
        if _missing(value):
            raise UserError(f"{path}: data row {number} has no value in column {col!r}")
        if isinstance(value, (dict, list)):
            raise UserError(f"{path}: data row {number}: column {col!r} holds a "
                            f"{type(value).__name__}, expected text")
    return values


def _texts(path: Path, values: list[Any], col: str) -> list[str]:
    texts = [" ".join(str(v).split()) for v in values]
    for number, text in enumerate(texts, start=1):
        if len(text) > MAX_TEXT_CHARS:
            raise UserError(f"{path}: data row {number}: column {col!r} holds {len(text):,} "
                            f"characters (limit {MAX_TEXT_CHARS:,})")
    return texts


def _label_strings(path: Path, values: list[Any], col: str) -> list[str]:
    strings = [str(v).strip() for v in values]
    for number, name in enumerate(strings, start=1):
        if name.lower() in NAN_LABELS:
            raise UserError(f"{path}: data row {number} has label {name!r} in column {col!r} "
                            "(a missing value, not a class)")
    return strings


def label_names(path: Path, values: list[Any], col: str) -> tuple[str, ...]:
    """Sorted class names of a label column; UserError for NaN-like labels or a single class."""
    strings = _label_strings(path, values, col)
    names = set(strings)
    if len(names) < 2:
        raise UserError(f"{path}: column {col!r} holds a single class ({strings[0]!r}); "
                        "classification needs at least two")
    # Numeric labels sort as numbers so "10" does not land between "1" and "2".
    if all(n.lstrip("-").isdigit() for n in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def assign_splits(path: Path, rows: list[dict[str, Any]], columns: list[str],
                  split_col: str | None = None) -> list[str]:
    """Return each row's split: from `split_col` (default: a `split` column if present), else
    seeded 80/10/10. UserError for a named column the file lacks or a value not a split name."""
    if split_col is not None and split_col not in columns:
        raise UserError(f"{path}: no split column {split_col!r}; columns present: "
                        f"{', '.join(columns)}")
    col = split_col or "split"
    if col in columns:
        assigned = [str(row.get(col) or "").strip() for row in rows]
        bad = sorted(set(assigned) - set(SPLIT_NAMES))
        if bad:
            shown = f"{bad[:5]}" + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise UserError(f"{path}: split values {shown} in column {col!r} are not in "
                            f"{', '.join(SPLIT_NAMES)}")
        return assigned
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    n_test = max(1, round(0.1 * len(rows)))  # tiny files still get a non-empty test split
    n_dev = min(round(0.1 * len(rows)), len(rows) - n_test)
    assigned = ["train"] * len(rows)
    for rank, index in enumerate(order):
        if rank < n_test:
            assigned[index] = "test"
        elif rank < n_test + n_dev:
            assigned[index] = "dev"
    return assigned


def _columns(path: Path, text_col: str | None, label_col: str | None):
    """(rows, columns, texts, label values or None, label column) of a checked user file."""
    if path.suffix not in (".csv", ".jsonl"):
        raise UserError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .jsonl")
    if path.is_dir():  # named like a data file, but not one (nor an image set, by its name)
        raise UserError(f"{path} is a folder, not a {path.suffix[1:].upper()} file")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    rows, columns = read_rows(path)
    text_col = text_col or "text"
    texts = _texts(path, column(path, rows, columns, text_col), text_col)
    # An unnamed, absent label column means unlabelled data (fine for calibration).
    if label_col is None and "label" not in columns:
        return rows, columns, texts, None, None
    label_col = label_col or "label"
    return rows, columns, texts, column(path, rows, columns, label_col), label_col


def read_user_file(path: Path, text_col: str | None, label_col: str | None,
                   split_col: str | None = None) -> UserRows:
    """Read and check a user .csv / .jsonl file; raises UserError naming the file and column."""
    rows, columns, texts, values, label_col = _columns(path, text_col, label_col)
    label_ids: list[int] | None = None
    names: tuple[str, ...] = ()
    if values is not None:
        names = label_names(path, values, label_col)
        label_ids = [names.index(str(v).strip()) for v in values]
    assigned = assign_splits(path, rows, columns, split_col)
    return UserRows(texts, names, label_ids, assigned, drawn=(split_col or "split") not in columns)


# ---------------------------------------------------------------- one file per split


def split_files(spec: str) -> dict[str, Path] | None:
    """{split: file} of a spec `train=a.csv,dev=b.csv,test=c.csv`; None for any other spec (a
    registry name or one file). UserError for a part that is not a split's file, a split given
    twice, or no train or test file (dev is optional)."""
    parts = [part.strip() for part in spec.split(",")]
    # Only a spec whose first part names a split is one: a single file may have "=" in its name.
    if "=" not in spec or Path(spec).exists() or parts[0].partition("=")[0].strip() \
            not in SPLIT_NAMES:
        return None
    files: dict[str, Path] = {}
    for part in parts:
        name, _, file = (x.strip() for x in part.partition("="))
        if name not in SPLIT_NAMES or not file:
            raise UserError(f"dataset {spec!r}: {part!r} is not train=FILE, dev=FILE or "
                            "test=FILE")
        if name in files:
            raise UserError(f"dataset {spec!r}: the {name} split is given twice")
        files[name] = Path(file)
    for name in ("train", "test"):
        if name not in files:
            raise UserError(f"dataset {spec!r}: no {name}=FILE (train and test are needed; "
                            "dev is drawn from train when absent)")
    return {name: files[name] for name in SPLIT_NAMES if name in files}


def split_files_spec(files: dict[str, str]) -> str:
    """The spec of one file per split, in split order (what `split_files` reads back)."""
    return ",".join(f"{name}={files[name]}" for name in SPLIT_NAMES if name in files)


def _ids_as_in(path: Path, values: list[Any], col: str, names: tuple[str, ...],
               train: Path) -> list[int]:
    """Class ids of a dev / test file's labels by the train file's class names."""
    strings = _label_strings(path, values, col)
    for number, name in enumerate(strings, start=1):
        if name not in names:
            raise UserError(f"{path}: data row {number} has label {name!r} in column {col!r}, "
                            f"which the train file {train.name} does not have "
                            f"({', '.join(names)})")
    return [names.index(name) for name in strings]


def _draw_dev(n: int) -> list[str]:
    """Splits of the train file's n rows when no dev file is given: a seeded 10 % is dev."""
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    n_dev = max(1, round(0.1 * n)) if n > 1 else 0
    assigned = ["train"] * n
    for index in order[:n_dev]:
        assigned[index] = "dev"
    return assigned


def read_split_files(files: dict[str, Path], text_col: str | None,
                     label_col: str | None) -> UserRows:
    """Read one file per split, each whole as its split (a split column in it is not read).

    Classes are the train file's; the other files need the same columns, and a label the
    train file lacks is refused. UserError names the file, the column or the row."""
    train = files["train"]
    _, _, texts, values, label_col = _columns(train, text_col, label_col)
    names = () if values is None else label_names(train, values, label_col)
    label_ids = None if values is None else [names.index(str(v).strip()) for v in values]
    assigned = ["train"] * len(texts) if "dev" in files else _draw_dev(len(texts))
    for name in ("dev", "test"):
        if name not in files:
            continue
        # a labelled train file's label column (by its resolved name) must be in every file
        _, _, more, more_values, _ = _columns(files[name], text_col, label_col)
        texts += more
        assigned += [name] * len(more)
        if label_ids is not None:
            label_ids += _ids_as_in(files[name], more_values, label_col, names, train)
    how = {name: files[name].name for name in files}
    how.setdefault("dev", f"drawn from {train.name} (seeded 10 %)")
    note = "one file per split: " + ", ".join(f"{k} {how[k]}" for k in SPLIT_NAMES)
    return UserRows(texts, names, label_ids, assigned, drawn=False, note=note)
