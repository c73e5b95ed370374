"""What the `llm export` CLI tests of every format share: a held-out text CSV and a profile file
of a tiny LLM target with gate thresholds the test chooses."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.compress.llm.tiny import TEXTS

PROFILE = """kind = "llm"
name = "{name}"
description = "test"
format = "{format}"
runtime = "{runtime}"
threads = 1
scheme = "{scheme}"
{extra}[gate]
kl_max = {kl_max}
top1_min = {top1_min}
windows = 3
context = 32
new_tokens = 4
"""


def write_text_csv(folder: Path) -> Path:
    """A CSV of the tiny texts, all in the test split (what the gate scores)."""
    path = folder / "text.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "split"])
        writer.writerows([f"{text} ({i})", "test"] for i, text in enumerate(TEXTS))
    return path


def write_profile(tmp_path: Path, *, name: str, format: str, runtime: str, scheme: str,
                  kl_max: float, top1_min: float, extra: str = "") -> str:
    """A one-thread LLM target profile; `extra`: top-level lines of the format's own keys."""
    path = tmp_path / f"{scheme}.toml"
    path.write_text(PROFILE.format(name=name, format=format, runtime=runtime, scheme=scheme,
                                   kl_max=kl_max, top1_min=top1_min, extra=extra))
    return str(path)
