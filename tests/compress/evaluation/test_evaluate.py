import numpy as np
import pytest

from edgecompress.compress.evaluation.evaluate import classification_metrics, macro_f1
from edgecompress.stats import wilson_interval


def test_wilson_interval_matches_published_value_when_zero_of_ten():
    # Wilson (1927) / Newcombe (1998) table: 0/10 -> [0, 0.2775]
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_wilson_interval_matches_published_value_when_81_of_263():
    # Newcombe (1998), example (c): 81/263 -> [0.2553, 0.3662]
    low, high = wilson_interval(81, 263)
    assert (low, high) == pytest.approx((0.2553, 0.3662), abs=1e-4)


def test_macro_f1_is_mean_of_class_f1_when_classes_are_unbalanced():
    y_true = np.array([0, 0, 0, 1])
    y_pred = np.array([0, 0, 1, 1])
    # class 0: tp 2, fp 0, fn 1 -> 0.8 ; class 1: tp 1, fp 1, fn 0 -> 2/3
    assert macro_f1(y_true, y_pred, 2) == pytest.approx((0.8 + 2 / 3) / 2)


def test_metrics_report_accuracy_and_agreement_when_reference_given():
    y_true = np.array([0, 1, 1, 0, 1])
    y_pred = np.array([0, 1, 0, 0, 1])
    reference = np.array([0, 1, 0, 1, 1])
    metrics = classification_metrics(y_true, y_pred, 2, reference)
    assert metrics.accuracy == pytest.approx(0.8)
    assert metrics.correct == 4 and metrics.n == 5
    assert metrics.agreement == pytest.approx(0.8)
    assert metrics.ci95[0] < 0.8 < metrics.ci95[1]
    assert set(metrics.to_json()) >= {"accuracy", "ci95", "n", "agreement", "macro_f1"}


def test_metrics_json_omits_agreement_when_no_reference():
    metrics = classification_metrics(np.array([1, 1]), np.array([1, 0]), 2)
    assert "agreement" not in metrics.to_json()
    assert metrics.to_json()["ci95"] == list(wilson_interval(1, 2))
