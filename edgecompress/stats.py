"""Paired statistics: how much a compressed model's accuracy differs from its reference's on the
same examples, with an interval that uses the pairing.

Two accuracies measured on the same test set are correlated, so their separate intervals overlap
even when one model is reliably worse. The paired 2x2 table (both right / model only / reference
only / both wrong) carries the information; Newcombe's hybrid-score interval (1998, method 10)
turns it into an interval for the difference, and McNemar's exact test gives a p-value from the
discordant pairs. Pure numpy + scipy (scipy is imported inside `paired_delta`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

MINUS = "\u2212"  # the real minus sign: "−1.2" reads as negative, "-1.2" can look like a dash


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)  # 0.95 -> 1.959963984540054


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (fractions) for `correct` successes of `n`; (0, 1) when n == 0.

    Raises ValueError for negative counts, correct > n, or confidence outside (0, 1).
    """
    z = _z(confidence)
    if n < 0 or not 0 <= correct <= max(n, 0):
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact ends at 0/n and n/n (the formula gives them only up to rounding)
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    return (low, 1.0 if correct == n else min(1.0, centre + half))


def _phi(both: int, model_only: int, reference_only: int, neither: int) -> float:
    """Newcombe's correlation estimate for method 10: phi with its numerator shrunk by n/2
    towards 0 when positive (0 when the table has an empty margin)."""
    n = both + model_only + reference_only + neither
    margins = ((both + model_only) * (reference_only + neither) * (both + reference_only)
               * (model_only + neither))
    if margins == 0:
        return 0.0
    cross = both * neither - model_only * reference_only
    if cross > n / 2:
        cross -= n / 2
    elif cross >= 0:
        cross = 0
    return cross / math.sqrt(margins)


def newcombe_paired_interval(both: int, model_only: int, reference_only: int, neither: int,
                             confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe (1998) method-10 interval (fractions) for p_model - p_reference on paired data.

    Counts are the paired 2x2 table: `both` right, `model_only` right, `reference_only` right,
    `neither` right. Raises ValueError for negative counts or an empty table.
    """
    counts = (both, model_only, reference_only, neither)
    if min(counts) < 0 or sum(counts) == 0:
        raise ValueError(f"need non-negative counts with n > 0, got {counts}")
    n = sum(counts)
    p1, p2 = (both + model_only) / n, (both + reference_only) / n
    l1, u1 = wilson_interval(both + model_only, n, confidence)
    l2, u2 = wilson_interval(both + reference_only, n, confidence)
    phi = _phi(*counts)
    below = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (p1 - p2 - below, p1 - p2 + above)


@dataclass(frozen=True)
class PairedDelta:
    """Accuracy of a model minus its reference's on the same n examples, in points."""

    delta: float  # points: 100 * (model_only - reference_only) / n
    ci95: tuple[float, float]  # points, Newcombe method 10 at the requested confidence
    n: int
    model_only: int  # model right, reference wrong
    reference_only: int  # reference right, model wrong
    disagreements: int  # predictions differ (whether or not either is right)
    p_value: float  # McNemar exact (two-sided binomial test on the discordant pairs)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if min(self.model_only, self.reference_only) < 0 or \
                self.model_only + self.reference_only > self.disagreements:
            raise ValueError("need 0 <= model_only + reference_only <= disagreements, got "
                             f"{self.model_only} + {self.reference_only} > {self.disagreements}")
        if self.disagreements > self.n:
            raise ValueError(f"disagreements {self.disagreements} > n {self.n}")
        if not self.ci95[0] <= self.delta <= self.ci95[1]:
            raise ValueError(f"delta {self.delta} lies outside its interval {self.ci95}")
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"p_value must be in [0, 1], got {self.p_value}")

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.ci95[0] > 0 or self.ci95[1] < 0

    def to_json(self) -> dict:
        return {"delta": self.delta, "delta_ci95": list(self.ci95), "n": self.n,
                "model_only": self.model_only, "reference_only": self.reference_only,
                "disagreements": self.disagreements, "p_value": self.p_value,
                "significant": self.significant}


def _labels(*arrays) -> list[np.ndarray]:
    out = [np.asarray(a) for a in arrays]
    if any(a.ndim != 1 for a in out):
        raise ValueError("labels and predictions must be 1-D")
    if len({len(a) for a in out}) != 1:
        raise ValueError(f"labels and predictions differ in length: {[len(a) for a in out]}")
    if len(out[0]) == 0:
        raise ValueError("no examples (n = 0)")
    return out


def paired_delta(labels, pred_model, pred_reference, *, confidence: float = 0.95) -> PairedDelta:
    """Paired accuracy difference model - reference (points) on the same examples.

    Returns a PairedDelta with the Newcombe method-10 interval and McNemar's exact p-value.
    Raises ValueError when the arrays are empty, not 1-D, or of different lengths.
    """
    from scipy.stats import binomtest

    labels, model, reference = _labels(labels, pred_model, pred_reference)
    right_m, right_r = model == labels, reference == labels
    both = int(np.sum(right_m & right_r))
    model_only, reference_only = int(np.sum(right_m & ~right_r)), int(np.sum(~right_m & right_r))
    neither = len(labels) - both - model_only - reference_only
    low, high = newcombe_paired_interval(both, model_only, reference_only, neither, confidence)
    discordant = model_only + reference_only
    p_value = 1.0 if discordant == 0 else float(binomtest(model_only, discordant, 0.5).pvalue)
    delta = 100.0 * (model_only - reference_only) / len(labels)
    return PairedDelta(delta=delta, ci95=(min(100.0 * low, delta), max(100.0 * high, delta)),
                       n=len(labels), model_only=model_only, reference_only=reference_only,
                       disagreements=int(np.sum(model != reference)), p_value=min(p_value, 1.0))


def _signed(points: float) -> str:
    text = f"{abs(points):.1f}"
    if text == "0.0":
        return text
    return ("+" if points > 0 else MINUS) + text


def format_delta(d: PairedDelta | Mapping) -> str:
    """'−1.2 points [−2.5, +0.1], not significant' from a PairedDelta or its to_json() dict.

    Significance is read off the interval (excludes 0), never from a stored flag.
    """
    data = d.to_json() if isinstance(d, PairedDelta) else d
    low, high = data["delta_ci95"]
    verdict = "significant" if low > 0 or high < 0 else "not significant"
    return f"{_signed(data['delta'])} points [{_signed(low)}, {_signed(high)}], {verdict}"
