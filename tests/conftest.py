"""Shared fixtures: tiny models saved as checkpoint directories, a small labelled CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from tests.models import save_tiny, tiny_bert, tiny_plain

# rich wraps tables to the terminal width; CliRunner has none, so give it a wide one.
os.environ["COLUMNS"] = "200"
# What the CLI sets for its own process (cli/common.configure_process), for the tests that call
# the library directly: the tokenizer's threads fight torch for the cores.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    """Under pytest-xdist (the default run: one worker per core), each worker's torch gets its
    share of the cores, so N workers do not run N x cores threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return save_tiny(tiny_bert(), tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_plain_dir(tmp_path_factory) -> Path:
    return save_tiny(tiny_plain(), tmp_path_factory.mktemp("tiny-plain"))


@pytest.fixture(scope="session")
def sentiment_csv(tmp_path_factory) -> Path:
    """40 labelled sentences with an explicit split column (train 24 / dev 8 / test 8)."""
    good = ["a wonderful, moving film", "brilliant acting and a sharp script",
            "funny, warm and clever", "an absolute delight from start to finish"]
    bad = ["a dull, lifeless mess", "the plot makes no sense at all",
           "boring and far too long", "a tedious waste of two hours"]
    rows = []
    for i in range(5):
        for text in good:
            rows.append((f"{text} {i}", "pos"))
        for text in bad:
            rows.append((f"{text} {i}", "neg"))
    path = tmp_path_factory.mktemp("csv") / "sentiment.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        for i, (text, label) in enumerate(rows):
            split = "train" if i < 24 else ("dev" if i < 32 else "test")
            writer.writerow([text, label, split])
    return path


def write_recipe(directory: Path, model: Path, dataset: Path, extra: str = "",
                 targets=("x86-cpu", "arm64-phone")) -> Path:
    """A recipe on the tiny model and CSV: fp32 schemes, so artifacts agree with torch exactly."""
    names = ", ".join(f'"{t}"' for t in targets)
    schemes = ", ".join(f'"{t}" = "fp32"' for t in targets)
    path = directory / "tiny.toml"
    path.write_text(f'name = "tiny"\nmodel = "{model}"\ndataset = "{dataset}"\n'
                    f"targets = [{names}]\n\n[quantize]\nschemes = {{ {schemes} }}\n\n"
                    f"[bench]\nruns = 3\nwarmup = 1\n{extra}")
    return path
