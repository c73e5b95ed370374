"""Tiny teacher and data for the distillation tests (every test runs in seconds)."""

from __future__ import annotations

import pytest
import torch

from tests.models import tiny_bert

TEXTS = ["a wonderful film", "a dull mess", "brilliant and funny", "boring, far too long",
         "an absolute delight", "a tedious waste of time", "warm and clever", "lifeless"] * 3
LABELS = [1, 0, 1, 0, 1, 0, 1, 0] * 3


def sharp_teacher(seed: int = 0):
    """A tiny BERT whose classifier is scaled up, so its soft labels are far from uniform."""
    loaded = tiny_bert(seed=seed)
    with torch.no_grad():
        loaded.module.hf.classifier.weight.mul_(30.0)
    return loaded


@pytest.fixture()
def teacher():
    return sharp_teacher()
