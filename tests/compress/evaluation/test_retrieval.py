"""Nearest-neighbour retrieval of a sentence encoder against a reference's (on-device search)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.evaluation.evaluate import evaluate_retrieval, retrieval_metrics
from edgecompress.targets import torch_runner
from tests.models import save_tiny, tiny_sentence_encoder

TEXTS = [f"{a} {b} film" for a in ("a dull", "a bright", "an odd", "a long", "a warm")
         for b in ("comedy", "drama", "thriller", "story", "mess", "musical")]


def _pair(loaded):
    return torch_runner(loaded.module), loaded.tokenizer


def test_retrieval_is_perfect_when_model_is_its_own_reference():
    model = tiny_sentence_encoder(seed=0)
    result = evaluate_retrieval(_pair(model), _pair(model), TEXTS, k=5)
    assert result["recall_at_k"] == 1.0 and result["mrr"] == 1.0
    assert result["reference_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert result["n"] == len(TEXTS) and result["k"] == 5


def test_retrieval_is_below_one_when_reference_is_another_random_model():
    result = evaluate_retrieval(_pair(tiny_sentence_encoder(seed=0)),
                                _pair(tiny_sentence_encoder(seed=1)), TEXTS, k=5)
    assert result["recall_at_k"] < 1.0 and result["mrr"] < 1.0


def test_retrieval_metrics_rank_reference_neighbour_second_when_model_swaps_two():
    # 4 points on a line: the reference's nearest neighbour of row 0 is row 1; the model moves
    # row 1 behind row 2, so row 0's true nearest is found at rank 2
    reference = np.array([[1.0, 0.0], [0.9, 0.1], [0.7, 0.3], [0.0, 1.0]])
    model = np.array([[1.0, 0.0], [0.6, 0.4], [0.9, 0.1], [0.0, 1.0]])
    metrics = retrieval_metrics(model, reference, k=1)
    assert metrics.k == 1 and metrics.mrr < 1.0
    assert retrieval_metrics(reference, reference, k=2).recall_at_k == 1.0


def test_retrieval_metrics_raise_when_fewer_than_two_rows():
    with pytest.raises(ValueError, match=">= 2 rows"):
        retrieval_metrics(np.ones((1, 4)), np.ones((1, 4)))


def test_eval_json_reports_retrieval_when_encoder_has_reference(tmp_path, sentiment_csv):
    model = save_tiny(tiny_sentence_encoder(seed=0), tmp_path / "model")
    other = save_tiny(tiny_sentence_encoder(seed=1), tmp_path / "other")
    result = CliRunner().invoke(app, ["eval", str(model), "--dataset", str(sentiment_csv),
                                      "--reference", str(other), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["task"] == "embedding" and out["reference"] == str(other)
    assert 0 <= out["retrieval"]["recall_at_k"] <= 1 and out["retrieval"]["n"] >= 2


def test_eval_exits_2_naming_reference_when_encoder_is_evaluated_on_labels(tmp_path,
                                                                          sentiment_csv):
    model = save_tiny(tiny_sentence_encoder(seed=0), tmp_path / "model")
    result = CliRunner().invoke(app, ["eval", str(model), "--dataset", str(sentiment_csv)])
    assert result.exit_code == 2 and "--reference" in result.output
