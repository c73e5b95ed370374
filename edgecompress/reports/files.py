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
    return data


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
