"""The report's "Data" section: what happened to the test text on its way into the models.

Read from eval.json (written by the eval step, compress/data/audit.py computes the numbers):
`truncated` {max_length, rows, share} — rows of the evaluated split longer than the model's max
length in tokens, cut before the model saw them; `duplicates` {split, against, rows, n} — test
rows whose normalised text is also in the training split. And from bench.json's `real_lengths`
{n, mean, max}: when every sampled sentence is as long as the max length, the "real lengths"
latency column is a max-length latency, and the section says so. Older files without these keys
say "not recorded"; nothing is guessed.
"""

from __future__ import annotations


def _who(row: dict) -> str:
    return str(row.get("target")) + (" (device)" if row.get("measured_on") == "device" else "")


def data_section(teacher: dict, evaluated: list[tuple[str, dict]], rows: list[dict]) -> dict:
    """{"truncated": [{models, split, max_length, rows, share}], "duplicates": {...} or None,
    "real_lengths_at_max": [targets]} from the teacher's and each (target, eval.json) of
    `evaluated`, and the rows' bench `real_lengths`; truncation grouped by identical records."""
    records = ([("teacher", teacher)] if teacher else []) + list(evaluated)
    groups: dict[tuple, dict] = {}
    for who, record in records:
        cut = record.get("truncated")
        if not cut:
            continue
        key = (record.get("split", "test"), cut["max_length"], cut["rows"], cut["share"])
        groups.setdefault(key, {"models": [], "split": key[0], "max_length": key[1],
                                "rows": key[2], "share": key[3]})["models"].append(who)
    duplicates = next((r["duplicates"] for _, r in records if r.get("duplicates")), None)
    max_lengths = {g["max_length"] for g in groups.values()}
    at_max = [_who(row) for row in rows if _all_at_max(row.get("real_lengths"), max_lengths)]
    return {"truncated": list(groups.values()), "duplicates": duplicates,
            "real_lengths_at_max": at_max}


def _all_at_max(lengths, max_lengths: set) -> bool:
    """Every timed sentence was cut to the same length: the max length when it is known, or
    a shared length of at least 128 tokens (what the bench cuts at) when it is not."""
    if not isinstance(lengths, dict) or not isinstance(lengths.get("n"), int) or lengths["n"] < 2:
        return False
    if lengths.get("mean") != lengths.get("max"):
        return False
    return lengths["max"] in max_lengths if max_lengths else lengths["max"] >= 128


def data_lines(data: dict | None) -> list[str]:
    """The section's sentences, for markdown and HTML alike."""
    if not data:
        return []
    lines = []
    for group in data["truncated"]:
        one = group["rows"] == 1
        lines.append(f"Truncation: {group['rows']:,} {group['split']} row{'' if one else 's'} "
                     f"({group['share']:.1%}) {'is' if one else 'are'} longer than "
                     f"{group['max_length']} tokens; the "
                     f"model sees only their first {group['max_length']} tokens "
                     f"({', '.join(group['models'])}).")
    if not data["truncated"]:
        lines.append("Truncation at the model's max length: not recorded (eval.json predates "
                     "it).")
    duplicates = data.get("duplicates")
    if duplicates is None:
        lines.append("Train/test overlap: not recorded (eval.json predates it).")
    elif duplicates["rows"]:
        lines.append(f"Warning: {duplicates['rows']:,} of {duplicates['n']:,} "
                     f"{duplicates.get('split', 'test')} rows "
                     f"({duplicates['rows'] / max(duplicates['n'], 1):.1%}) also appear in the "
                     f"{duplicates.get('against', 'train')} split (same text after lower-casing "
                     "and collapsing spaces): on those rows accuracy measures memory.")
    else:
        lines.append(f"Train/test overlap: none of the {duplicates['n']:,} "
                     f"{duplicates.get('split', 'test')} rows appears in the "
                     f"{duplicates.get('against', 'train')} split.")
    if data.get("real_lengths_at_max"):
        lines.append(f"p50 ms, real lengths ({', '.join(data['real_lengths_at_max'])}): every "
                     "sampled test sentence was cut to the max length, so that column is the "
                     "max-length latency here, not a shorter real-length one.")
    return lines


def data_markdown(data: dict | None) -> list[str]:
    lines = data_lines(data)
    return ["## Data", ""] + [f"- {line}" for line in lines] + [""] if lines else []
