"""Calibration sets: real sentences drawn so the split's sequence-length distribution is kept."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from edgecompress.compress.evaluation.evaluate import token_lengths, tokenize
from edgecompress.errors import UserError
from edgecompress.targets.inputs import split_rows

CALIBRATION_BATCH = 8  # rows padded together, so calibration sees the mask's -100 on padding


@dataclass(frozen=True)
class Calibration:
    """Calibration batches (int64 (B, S), padded per batch) and what was drawn, for the manifest."""

    batches: tuple[dict, ...]
    record: dict

    def rows(self, limit: int | None = None) -> list[dict]:
        """One-row feeds {input_ids, attention_mask} (1, S), at most `limit`."""
        out = [row for b in self.batches for row in split_rows(b)]
        return out[:limit]


def calibration_set(split, tokenizer, n: int, max_length: int, *, seed: int = 0,
                    split_name: str = "train") -> Calibration:
    """Draw `n` real sentences keeping the split's sequence-length distribution.

    The split is ordered by token length and cut into `n` equal strata; one sentence is drawn at
    random (fixed seed) from each, so short and long sentences appear as often as in the data.
    Raises UserError when the split holds fewer than `n` sentences.
    """
    texts = list(split.texts)
    if n < 1 or n > len(texts):
        raise UserError(f"calibration set smaller than asked: {split_name} has {len(texts)} "
                        f"sentences, asked for {n}")
    lengths = token_lengths(tokenizer, texts, max_length).tolist()  # all 1 for images
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    rng = random.Random(seed)
    bounds = np.linspace(0, len(texts), n + 1).astype(int)  # stratum edges in `order`
    picked = [order[rng.randrange(lo, hi)] for lo, hi in zip(bounds[:-1], bounds[1:])]
    rng.shuffle(picked)  # mixed lengths per batch: padding (and the -100 mask) gets calibrated
    batches = tuple(tokenize(tokenizer, [texts[i] for i in picked[s:s + CALIBRATION_BATCH]],
                             max_length) for s in range(0, n, CALIBRATION_BATCH))
    chosen = np.array([lengths[i] for i in picked])
    record = {"split": split_name, "n": n, "seed": seed, "indices": picked,
              "tokens": _length_summary(chosen),
              "split_tokens": _length_summary(np.array(lengths))}
    return Calibration(batches, record)


def _length_summary(lengths: np.ndarray) -> dict:
    return {"min": int(lengths.min()), "p25": float(np.percentile(lengths, 25)),
            "p50": float(np.median(lengths)), "p75": float(np.percentile(lengths, 75)),
            "max": int(lengths.max()), "mean": round(float(lengths.mean()), 2)}
