"""Calibration sets: real sentences, seeded, keeping the split's length distribution."""

import numpy as np
import pytest

from edgecompress.compress.data.datasets import Split
from edgecompress.compress.quantize.calibration import calibration_set
from edgecompress.errors import UserError
from tests.compress.quantize.test_stage import _texts
from tests.models import tokenizer


def test_calibration_set_is_deterministic_and_keeps_length_distribution_when_seeded():
    split = Split(tuple(_texts(400, 3)), None)
    first = calibration_set(split, tokenizer(), 40, 128, seed=7)
    again = calibration_set(split, tokenizer(), 40, 128, seed=7)
    other = calibration_set(split, tokenizer(), 40, 128, seed=8)
    assert first.record["indices"] == again.record["indices"] != other.record["indices"]
    assert all(np.array_equal(a["input_ids"], b["input_ids"])
               for a, b in zip(first.batches, again.batches))
    chosen, whole = first.record["tokens"], first.record["split_tokens"]
    assert abs(chosen["p50"] - whole["p50"]) <= 2 and abs(chosen["mean"] - whole["mean"]) <= 1.5
    assert sum(len(b["input_ids"]) for b in first.batches) == 40
    assert any(b["attention_mask"].min() == 0 for b in first.batches)  # padding is calibrated


def test_calibration_set_raises_user_error_when_split_is_smaller_than_asked():
    with pytest.raises(UserError, match="calibration set smaller than asked.*3 sentences.*10"):
        calibration_set(Split(("a", "b", "c"), None), tokenizer(), 10, 128)
