"""Checking the JSON a run directory holds (read by edgecompress/rundir.py), once at the edge.

Every problem is a `UserError` whose one-line message names the file (and the key): a report on a
half-written or hand-edited run says what is wrong instead of printing a traceback.
"""

from __future__ import annotations

import json

from edgecompress.errors import UserError

EVAL_NUMBERS = ("accuracy", "n", "agreement")
BENCH_NUMBERS = ("p50_ms", "p90_ms", "p99_ms", "p50_real_ms", "size_bytes", "gzip_bytes",
                 "peak_rss_mb", "threads")
VS_TEACHER_NUMBERS = ("n", "model_only", "reference_only", "disagreements", "p_value")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def check_numbers(data: dict, keys: tuple[str, ...], where: str) -> None:
    """Raise UserError when one of `keys` is present, not null, and not a number."""
    for key in keys:
        value = data.get(key)
        if value is not None and not _is_number(value):
            raise UserError(f"{where}: '{key}' should be a number, got {_show(value)}")


def check_interval(value, key: str, where: str) -> None:
    """Raise UserError unless `value` is None or a [low, high] pair of numbers, low <= high."""
    if value is None:
        return
    if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
            and value[0] <= value[1]):
        raise UserError(f"{where}: '{key}' should be [low, high], got {_show(value)}")


def check_eval(data: dict, where: str) -> dict:
    """An eval.json's fields (teacher or artifact), checked; returns `data`."""
    check_numbers(data, EVAL_NUMBERS, where)
    check_interval(data.get("ci95"), "ci95", where)
    if data.get("vs_teacher") is not None:
        check_vs_teacher(data["vs_teacher"], f"{where}: vs_teacher")
    check_classes(data, where)
    for key, numbers in (("truncated", ("max_length", "rows", "share")),
                         ("duplicates", ("rows", "n"))):
        if data.get(key) is not None:
            _check_object(data[key], numbers, f"{where}: '{key}'")
    return data


def check_run_eval(data: dict, where: str) -> dict:
    """An eval.json a run's eval step wrote: besides check_eval, it must hold the accuracy and
    the number of rows it was measured on (an empty or half-written file is not a result)."""
    check_eval(data, where)
    missing = [key for key in ("accuracy", "n") if data.get(key) is None]
    if missing:
        raise UserError(f"{where} lacks {' and '.join(repr(k) for k in missing)}: not a "
                        "finished evaluation (half-written or edited)")
    if not 0 <= data["accuracy"] <= 1 or data["n"] < 1 or data["n"] != int(data["n"]):
        raise UserError(f"{where}: accuracy {_show(data['accuracy'])} on n = {_show(data['n'])}"
                        " is not a measurement (accuracy in [0, 1], n a count >= 1)")
    return data


def _check_object(value, numbers: tuple[str, ...], where: str) -> None:
    if not isinstance(value, dict):
        raise UserError(f"{where} should be an object, got {_show(value)}")
    missing = [key for key in numbers if not _is_number(value.get(key))]
    if missing:
        raise UserError(f"{where} needs numeric {', '.join(repr(k) for k in missing)}")


PER_CLASS_LISTS = ("recall", "precision", "f1", "support")


def check_classes(data: dict, where: str) -> None:
    """eval.json's `per_class` ({labels, recall, precision, f1, support}, one entry per class)
    and `confusion` (rows true class, columns predicted, counts): both absent, or consistent."""
    per_class, confusion = data.get("per_class"), data.get("confusion")
    check_numbers(data, ("macro_f1",), where)
    if per_class is None and confusion is None:
        return
    if not isinstance(per_class, dict):
        raise UserError(f"{where}: 'per_class' should be an object, got {_show(per_class)}")
    labels = per_class.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise UserError(f"{where}: 'per_class.labels' should be a list of class names, got "
                        f"{_show(labels)}")
    for key in PER_CLASS_LISTS:
        values = per_class.get(key)
        if not (isinstance(values, list) and len(values) == len(labels)
                and all(_is_number(v) for v in values)):
            raise UserError(f"{where}: 'per_class.{key}' should be {len(labels)} numbers (one "
                            f"per class), got {_show(values)}")
    size = len(labels)
    if confusion is not None and not (
            isinstance(confusion, list) and len(confusion) == size
            and all(isinstance(row, list) and len(row) == size
                    and all(_is_number(v) and v >= 0 and v == int(v) for v in row)
                    for row in confusion)):
        raise UserError(f"{where}: 'confusion' should be a {size} x {size} table of counts "
                        f"(rows true class, columns predicted), got {_show(confusion)}")


def check_vs_teacher(data, where: str) -> dict:
    """A PairedDelta.to_json() dict: needs 'delta' and 'delta_ci95'; returns it."""
    if not isinstance(data, dict):
        raise UserError(f"{where} should be an object, got {_show(data)}")
    if not _is_number(data.get("delta")) or data.get("delta_ci95") is None:
        raise UserError(f"{where} needs numeric 'delta' and 'delta_ci95'")
    check_interval(data["delta_ci95"], "delta_ci95", where)
    check_numbers(data, VS_TEACHER_NUMBERS, where)
    return data


def check_bench(data: dict, where: str) -> dict:
    """A bench.json's fields; `host` may be a dict, an older plain string, or absent."""
    check_numbers(data, BENCH_NUMBERS, where)
    _check_real_lengths(data, where)
    host = data.get("host")
    if host is None or isinstance(host, str):
        return data
    if not isinstance(host, dict):
        raise UserError(f"{where}: 'host' should be an object, got {_show(host)}")
    isa, runtimes = host.get("isa"), host.get("runtimes")
    if isa is not None and not (isinstance(isa, list) and all(isinstance(f, str) for f in isa)):
        raise UserError(f"{where}: 'host.isa' should be a list of strings, got {_show(isa)}")
    if runtimes is not None and not isinstance(runtimes, dict):
        raise UserError(f"{where}: 'host.runtimes' should be an object, got {_show(runtimes)}")
    check_numbers(host, ("cores", "threads"), f"{where}: host")
    return data


def _check_real_lengths(data: dict, where: str) -> None:
    if data.get("real_lengths") is not None:
        _check_object(data["real_lengths"], ("n", "mean", "max"), f"{where}: 'real_lengths'")
