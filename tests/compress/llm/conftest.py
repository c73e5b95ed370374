"""Tiny decoder checkpoints (one per family, saved once per session) and a text CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.compress.llm.tiny import FAMILIES, TEXTS, save_tiny, tiny_lm


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    return {family: save_tiny(tiny_lm(family), tmp_path_factory.mktemp(f"tiny-{family}"))
            for family in FAMILIES}


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory) -> Path:
    """TEXTS as a CSV with a split column: train 20 / test 20."""
    path = tmp_path_factory.mktemp("text") / "text.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "split"])
        for i, text in enumerate(TEXTS):
            writer.writerow([f"{text} ({i})", "train" if i % 2 else "test"])
    return path
