import math

import numpy as np
import pytest

from edgecompress.stats import (
    PairedDelta,
    format_delta,
    newcombe_paired_interval,
    paired_delta,
    wilson_interval,
)

Z = 1.959963984540054


def _table(both, model_only, reference_only, neither):
    """Labels and two prediction vectors realising a paired 2x2 table (binary labels, all 0)."""
    labels = np.zeros(both + model_only + reference_only + neither, dtype=int)
    model = np.array([0] * (both + model_only) + [1] * (reference_only + neither))
    reference = np.array([0] * both + [1] * model_only + [0] * reference_only + [1] * neither)
    return labels, model, reference


def _wilson_by_hand(x, n):
    p = x / n
    centre = (2 * n * p + Z ** 2) / (2 * (n + Z ** 2))
    half = Z * math.sqrt(Z ** 2 + 4 * n * p * (1 - p)) / (2 * (n + Z ** 2))
    return centre - half, centre + half


def _newcombe_by_hand(a, b, c, d):
    """Newcombe (1998) method 10 written out again, independently of the module (fractions)."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson_by_hand(a + b, n)
    l2, u2 = _wilson_by_hand(a + c, n)
    cross = a * d - b * c
    cross = cross - n / 2 if cross > n / 2 else (0 if cross >= 0 else cross)
    phi = cross / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return low, high


def test_wilson_interval_matches_published_value_when_81_of_263():
    # Newcombe (1998), Statist. Med. 17:857, example: 81/263 -> 0.2553 to 0.3662
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)


def test_wilson_interval_ends_exactly_at_0_and_1_when_none_or_all_correct():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)


def test_wilson_interval_widens_when_confidence_rises():
    low95, high95 = wilson_interval(40, 50, 0.95)
    low99, high99 = wilson_interval(40, 50, 0.99)
    assert low99 < low95 and high99 > high95


def test_wilson_interval_raises_when_counts_or_confidence_are_invalid():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(5, 10, confidence=1.5)


def test_newcombe_interval_matches_published_value_when_cavo_table():
    # Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, ch. 8:
    # Cavo et al. (2012) paired table 59 / 6 / 16 / 80 -> -0.0621 (95 % CI -0.1186 to -0.0046),
    # as the `contingencytables` R package's tests also check.
    low, high = newcombe_paired_interval(59, 6, 16, 80)
    assert (low, high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)


def test_paired_delta_gives_counts_interval_and_p_value_when_table_is_80_10_2_8():
    d = paired_delta(*_table(80, 10, 2, 8))
    low, high = _newcombe_by_hand(80, 10, 2, 8)
    assert d.delta == pytest.approx(8.0)
    assert d.ci95 == pytest.approx((100 * low, 100 * high), abs=1e-9)
    assert (d.n, d.model_only, d.reference_only, d.disagreements) == (100, 10, 2, 12)
    # McNemar exact: 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert d.p_value == pytest.approx(158 / 4096)
    assert d.significant and d.ci95[0] > 0


def test_paired_delta_is_zero_with_p_value_1_when_predictions_are_identical():
    labels, model, _ = _table(80, 0, 0, 20)
    d = paired_delta(labels, model, model.copy())
    assert (d.delta, d.disagreements, d.model_only, d.reference_only) == (0.0, 0, 0, 0)
    assert d.p_value == 1.0 and not d.significant
    # Method 10 keeps some width without discordant pairs (0 of 100 seen does not prove 0 % in
    # the population); the pairing makes it far narrower than either accuracy's own interval.
    low, high = _newcombe_by_hand(80, 0, 0, 20)
    assert d.ci95 == pytest.approx((100 * low, 100 * high), abs=1e-9)
    assert d.ci95[0] == pytest.approx(-d.ci95[1])
    wilson_low, wilson_high = wilson_interval(80, 100)
    assert d.ci95[1] < 100 * (wilson_high - wilson_low) / 4


def test_paired_delta_is_not_significant_when_discordant_pairs_are_balanced():
    d = paired_delta(*_table(70, 5, 5, 20))
    assert d.delta == 0.0 and d.ci95[0] < 0 < d.ci95[1]
    assert not d.significant and d.p_value == pytest.approx(1.0)


def test_paired_delta_counts_disagreements_when_both_are_wrong_differently():
    labels = np.array([0, 1, 2, 2])
    model = np.array([0, 1, 0, 1])      # wrong on the last two
    reference = np.array([0, 1, 1, 0])  # wrong on the last two, with other labels
    d = paired_delta(labels, model, reference)
    assert (d.model_only, d.reference_only, d.disagreements) == (0, 0, 2)


def test_paired_delta_raises_when_n_is_zero_or_lengths_differ():
    with pytest.raises(ValueError, match="n = 0"):
        paired_delta([], [], [])
    with pytest.raises(ValueError, match="length"):
        paired_delta([0, 1], [0, 1], [0])
    with pytest.raises(ValueError, match="1-D"):
        paired_delta([[0, 1]], [[0, 1]], [[0, 1]])


def test_paired_delta_json_has_the_documented_keys_when_serialised():
    data = paired_delta(*_table(80, 10, 2, 8)).to_json()
    assert list(data) == ["delta", "delta_ci95", "n", "model_only", "reference_only",
                          "disagreements", "p_value", "significant"]
    assert isinstance(data["delta_ci95"], list) and data["significant"] is True


def test_paired_delta_refuses_a_delta_outside_its_interval_when_constructed():
    with pytest.raises(ValueError, match="outside"):
        PairedDelta(delta=5.0, ci95=(-1.0, 1.0), n=10, model_only=1, reference_only=0,
                    disagreements=1, p_value=1.0)


def test_format_delta_uses_the_real_minus_sign_when_negative():
    text = format_delta({"delta": -1.23, "delta_ci95": [-2.5, 0.1]})
    assert text == "\u22121.2 points [\u22122.5, +0.1], not significant"


def test_format_delta_says_significant_when_interval_excludes_zero():
    d = paired_delta(*_table(80, 10, 2, 8))
    assert format_delta(d) == format_delta(d.to_json())
    assert format_delta(d).startswith("+8.0 points [+1.0, +15.5]")
    assert format_delta(d).endswith(", significant")
