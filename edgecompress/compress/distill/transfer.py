"""The transfer set of task-specific distillation: more text for the student to learn the
teacher's soft targets on than the labelled training sentences (TinyBERT's data augmentation).

Each training sentence gets `augment` copies (config.TransferConfig). A copy is the sentence's
words (BERT's split: runs of letters/digits and single punctuation marks), each deleted with
probability `delete_rate` or replaced with probability `replace_rate` by one of its `neighbours`
nearest training words — nearest by cosine of the teacher's own input embedding, so no other
model is needed —, and with probability `mix_rate` a span of another training sentence put in
place of one of its own. Every word comes from the training split; a copy whose text (after
audit.normalize) equals a dev or test row is dropped, so nothing held out is trained on.
Deterministic: one `random.Random(seed)` drawn in row order; the neighbour lists are sorted.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from edgecompress.compress.data.audit import normalize
from edgecompress.compress.distill.config import TransferConfig

_WORDS = re.compile(r"[^\W_]+|[^\w\s]|_")  # BERT's basic split: word runs and punctuation marks


@dataclass(frozen=True)
class TransferSet:
    """The transfer rows and what the manifest says about them."""

    texts: tuple[str, ...]
    info: dict  # {"augment", "rows", "dropped_heldout", "words_with_neighbours", "seconds"}


def words(text: str) -> list[str]:
    return _WORDS.findall(text)


def vocabulary_words(texts: Sequence[str], vocab: dict[str, int]) -> dict[str, int]:
    """{word: token id} for the alphabetic words of `texts` that are one token of `vocab`
    (looked up as written, else lower-cased for an uncased tokenizer), sorted by word."""
    found: dict[str, int] = {}
    for text in texts:
        for word in words(text):
            if not word.isalpha():
                continue
            key = word if word in vocab else word.lower()
            if key in vocab:
                found.setdefault(key, vocab[key])
    return dict(sorted(found.items()))


def nearest_words(found: dict[str, int], embedding: torch.Tensor, k: int,
                  chunk: int = 2048) -> dict[str, tuple[str, ...]]:
    """{word: its k nearest other words of `found`} by cosine of rows of `embedding` (V, H)."""
    names = list(found)
    if len(names) < 2:
        return {}
    k = min(k, len(names) - 1)
    vectors = embedding.detach().float()[torch.tensor(list(found.values()))]
    vectors = torch.nn.functional.normalize(vectors, dim=-1)
    out: dict[str, tuple[str, ...]] = {}
    with torch.no_grad():
        for start in range(0, len(names), chunk):
            sims = vectors[start:start + chunk] @ vectors.T  # (chunk, W)
            rows = torch.arange(sims.shape[0])
            sims[rows, rows + start] = -2.0  # never a word's own neighbour
            top = torch.topk(sims, k, dim=-1).indices.numpy()
            for offset, picks in enumerate(top):
                out[names[start + offset]] = tuple(names[j] for j in picks)
    return out


def augment_sentence(text: str, pool: Sequence[list[str]], neighbours: dict[str, tuple[str, ...]],
                     config: TransferConfig, rng: random.Random) -> str:
    """One augmented copy of `text`: deletions, neighbour replacements, maybe a mixed-in span
    of a sentence of `pool` (the training split's words)."""
    original = words(text)
    out = []
    for word in original:
        if rng.random() < config.delete_rate:
            continue
        key = word if word in neighbours else word.lower()
        if key in neighbours and rng.random() < config.replace_rate:
            word = rng.choice(neighbours[key])
        out.append(word)
    if pool and rng.random() < config.mix_rate:
        other = pool[rng.randrange(len(pool))]
        if other:
            size = rng.randint(1, max(1, len(other) // 2))
            begin = rng.randrange(len(other) - size + 1)
            at = rng.randrange(len(out) + 1)
            out[at:at + size] = other[begin:begin + size]
    return " ".join(out or original)


def build_transfer_set(train_texts: Sequence[str], heldout_texts: Sequence[str],
                       vocab: dict[str, int], embedding: torch.Tensor,
                       config: TransferConfig, seed: int) -> TransferSet:
    """`config.augment` copies of every training sentence (rows in copy-major order), minus any
    copy equal to a held-out row (`heldout_texts`: dev and test)."""
    began = time.perf_counter()
    neighbours = nearest_words(vocabulary_words(train_texts, vocab), embedding,
                               config.neighbours)
    pool = [words(text) for text in train_texts]
    heldout = {normalize(text) for text in heldout_texts}
    rng = random.Random(seed)
    rows, dropped = [], 0
    for _ in range(config.augment):
        for text in train_texts:
            copy = augment_sentence(text, pool, neighbours, config, rng)
            if normalize(copy) in heldout:
                dropped += 1
            else:
                rows.append(copy)
    info = {"augment": config.augment, "rows": len(rows), "dropped_heldout": dropped,
            "words_with_neighbours": len(neighbours),
            "seconds": round(time.perf_counter() - began, 2)}
    return TransferSet(tuple(rows), info)


def input_embedding(module: torch.nn.Module) -> torch.Tensor:
    """The token embedding matrix (V, H) of an HF-wrapped or plain encoder."""
    from edgecompress.compress.training.train import token_embedding

    embedding = token_embedding(module)
    if embedding is None:
        raise ValueError("the teacher has no token embedding to find neighbouring words with")
    return embedding.weight


def heldout_rows(dataset) -> list[str]:
    """The dev and test texts of a loaded dataset (what a transfer row must never equal)."""
    return [text for name in ("dev", "test") if name in dataset.splits
            for text in dataset.splits[name].texts]


def token_vocab(tokenizer) -> dict[str, int]:
    return dict(tokenizer.get_vocab())

