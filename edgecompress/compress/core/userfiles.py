"""Reading the user's own .csv / .jsonl files: rows, the text and label columns, the splits.

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


def label_names(path: Path, values: list[Any], col: str) -> tuple[str, ...]:
    """Sorted class names of a label column; UserError for NaN-like labels or a single class."""
    strings = [str(v).strip() for v in values]
    for number, name in enumerate(strings, start=1):
        if name.lower() in NAN_LABELS:
            raise UserError(f"{path}: data row {number} has label {name!r} in column {col!r} "
                            "(a missing value, not a class)")
    names = set(strings)
    if len(names) < 2:
        raise UserError(f"{path}: column {col!r} holds a single class ({strings[0]!r}); "
                        "classification needs at least two")
    # Numeric labels sort as numbers so "10" does not land between "1" and "2".
    if all(n.lstrip("-").isdigit() for n in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def assign_splits(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Return each row's split: from a `split` column if present, else seeded 80/10/10."""
    if "split" in columns:
        assigned = [str(row.get("split") or "").strip() for row in rows]
        bad = sorted(set(assigned) - set(SPLIT_NAMES))
        if bad:
            raise UserError(f"{path}: split values {bad} are not in {', '.join(SPLIT_NAMES)}")
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


def read_user_file(path: Path, text_col: str | None, label_col: str | None) -> UserRows:
    """Read and check a user .csv / .jsonl file; raises UserError naming the file and column."""
    if path.suffix not in (".csv", ".jsonl"):
        raise UserError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .jsonl")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    rows, columns = read_rows(path)
    text_col = text_col or "text"
    texts = _texts(path, column(path, rows, columns, text_col), text_col)
    label_ids: list[int] | None = None
    names: tuple[str, ...] = ()
    # An unnamed, absent label column means unlabelled data (fine for calibration).
    if label_col is not None or "label" in columns:
        label_col = label_col or "label"
        values = column(path, rows, columns, label_col)
        names = label_names(path, values, label_col)
        label_ids = [names.index(str(v).strip()) for v in values]
    assigned = assign_splits(path, rows, columns)
    return UserRows(texts, names, label_ids, assigned, drawn="split" not in columns)
