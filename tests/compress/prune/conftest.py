"""Fixtures for the pruning tests: fresh tiny models (surgery edits them in place)."""

from __future__ import annotations

import pytest
import torch

from tests.models import batch, tiny_bert, tiny_plain

MAKERS = {"tiny_bert": tiny_bert, "tiny_plain": tiny_plain}


@pytest.fixture(params=sorted(MAKERS))
def fresh(request):
    """A new tiny model per test, both kinds."""
    return MAKERS[request.param]()


def logits(loaded, inputs=None):
    """Model outputs (B, C) on the shared sentences, no grad."""
    inputs = inputs or batch(loaded)
    with torch.no_grad():
        return loaded.module.eval()(torch.from_numpy(inputs["input_ids"]),
                                    torch.from_numpy(inputs["attention_mask"]))
