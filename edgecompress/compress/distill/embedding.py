"""Distilling a sentence encoder: its training text (no labels), its dev score and its held-out
metrics.

A sentence-encoder teacher (task "embedding", e.g. all-MiniLM-L6-v2) has no logits; the student
learns its mean-pooled embeddings (losses.embedding_cosine / embedding_mse) on plain text: the
train split's sentences of any text dataset, or the lines of a .txt file. The best student is
chosen on Spearman against human scores when a similarity set is given as dev, else on its mean
cosine to the teacher over held-out sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.models.loading import LoadedModel
from edgecompress.errors import UserError

DEV_FRACTION = 0.1  # of the training text, held out when the dataset has no dev split
MAX_DEV = 500  # dev sentences: a dev score every epoch must stay cheap
MAX_TEST = 1000  # held-out sentences for the final metrics (retrieval is O(N^2))


@dataclass(frozen=True)
class EmbeddingDev:
    """What the loop scores a student on: `pairs` (i, j, human score) over `texts` give
    Spearman; otherwise `teacher` (N, H) embeddings of `texts` give the mean cosine to them."""

    texts: tuple[str, ...]
    pairs: tuple[tuple[int, int, float], ...] = ()
    teacher: np.ndarray | None = None

    @property
    def metric(self) -> str:
        return "spearman" if self.pairs else "teacher_cosine"

    def score(self, student: LoadedModel, max_length: int) -> float:
        """The student's dev score (higher is better); leaves the module in eval mode."""
        from edgecompress.compress.evaluation.evaluate import (
            evaluate_similarity,
            mean_cosine,
            predict,
        )
        from edgecompress.targets import torch_runner

        runner = torch_runner(student.module)
        if self.pairs:
            return evaluate_similarity(runner, student.tokenizer, self.texts, self.pairs,
                                       max_length=max_length).spearman
        embeddings = predict(runner, student.tokenizer, list(self.texts), max_length=max_length)
        return mean_cosine(embeddings, self.teacher)


def embed(loaded: LoadedModel, texts, max_length: int) -> np.ndarray:
    """Embeddings (N, H) of `texts` by `loaded` in eval mode (torch)."""
    from edgecompress.compress.evaluation.evaluate import predict
    from edgecompress.targets import torch_runner

    return predict(torch_runner(loaded.module), loaded.tokenizer, list(texts),
                   max_length=max_length)


def embedding_texts(dataset: str, unlabeled: Path | None, seed: int,
                    data_ref=None) -> tuple[str, list[str], list[str], list[str]]:
    """(name, train texts, dev texts, test texts) for a sentence-encoder teacher.

    `dataset` is a .txt file (one sentence a line; dev and test are seeded 10 % draws) or any
    dataset `data_ref` loads (its train / dev / test splits' texts, labels unused); `unlabeled`
    adds training text. Raises UserError when there is no training text.
    """
    if dataset.endswith(".txt"):
        texts = unlabeled_texts(Path(dataset))
        train, dev = _hold_out(texts, seed)
        train, test = _hold_out(train, seed + 1)
        name = Path(dataset).name
    else:
        data = data_ref.load()
        name, train = data.name, list(data.split("train").texts) if "train" in data.splits else []
        dev_split, test_split = data.splits.get("dev"), data.splits.get("test")
        dev = list(dev_split.texts) if dev_split is not None else []
        test = list(test_split.texts) if test_split is not None else []
        if not dev:
            train, dev = _hold_out(train, seed)
    train += unlabeled_texts(unlabeled) if unlabeled else []
    if not train:
        raise UserError(f"dataset {name} has no training text (a train split or .txt lines)")
    return name, train, _sample(dev, MAX_DEV, seed), _sample(test, MAX_TEST, seed)


def _hold_out(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(kept, held out): a seeded DEV_FRACTION of `texts` (at least one when there are two)."""
    if len(texts) < 2:
        return texts, []
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(len(texts) * DEV_FRACTION))
    held = set(order[:cut])
    return ([t for i, t in enumerate(texts) if i not in held],
            [texts[i] for i in sorted(held)])


def _sample(texts: list[str], limit: int, seed: int) -> list[str]:
    return texts if len(texts) <= limit else random.Random(seed).sample(texts, limit)


def similarity_dev(name: str) -> EmbeddingDev:
    """A similarity dataset (e.g. lee-similarity) as the dev set: its texts and human pairs."""
    from edgecompress.compress.data.datasets import load_dataset

    data = load_dataset(name)
    if data.task != "similarity":
        raise UserError(f"--dev-similarity {name}: not a similarity dataset (task {data.task})")
    split = "test" if "test" in data.splits else next(iter(data.splits))
    return EmbeddingDev(tuple(data.split(split).texts), tuple(data.similarity))


def heldout_embedding_metrics(teacher: LoadedModel, student: LoadedModel, texts: list[str],
                              max_length: int, similarity: EmbeddingDev | None = None) -> dict:
    """On held-out `texts`: the student's mean cosine to the teacher and its nearest-neighbour
    retrieval against the teacher's (recall@k, MRR); Spearman of both on `similarity` if given
    (the set dev selection used: not a held-out number, hence its key)."""
    from edgecompress.compress.evaluation.evaluate import mean_cosine, retrieval_metrics

    out: dict = {"split": "test", "n": len(texts)}
    if len(texts) >= 2:
        t, s = embed(teacher, texts, max_length), embed(student, texts, max_length)
        out["teacher_cosine"] = mean_cosine(s, t)
        out["retrieval"] = retrieval_metrics(s, t).to_json()
    if similarity is not None and similarity.pairs:
        out["dev_similarity_spearman"] = {"student": similarity.score(student, max_length),
                           "teacher": similarity.score(teacher, max_length)}
    return out


def unlabeled_texts(path: Path) -> list[str]:
    """Sentences of a .txt file (one per line) or every split of a .csv/.jsonl file's text column.

    Raises UserError when the file is missing or holds no text.
    """
    from edgecompress.compress.data.datasets import load_dataset

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--unlabeled file not found: {path}")
    if path.suffix in (".csv", ".jsonl"):
        data = load_dataset(str(path))
        texts = [t for split in data.splits.values() for t in split.texts]
    else:
        texts = [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise UserError(f"--unlabeled file {path} holds no text")
    return texts
