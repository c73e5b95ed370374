"""torchrun with a sentence-encoder teacher: the embedding losses are means over rows, so two
processes on shards of each batch take the steps one process takes on the whole batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.compress.distill.test_distributed import TORCHRUN, _distill, _weights
from tests.models import save_tiny, tiny_sentence_encoder


@pytest.mark.slow  # ~12 s, two processes; test_distributed.py (classifier) runs by default
def test_two_processes_reach_the_weights_of_one_when_teacher_is_sentence_encoder(tmp_path):
    loaded = tiny_sentence_encoder(seed=3)
    loaded.module.hf.config.hidden_dropout_prob = 0.0  # a step then depends on the batch alone
    loaded.module.hf.config.attention_probs_dropout_prob = 0.0
    teacher = save_tiny(loaded, tmp_path / "teacher")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"a {w} film, number {i}" for i, w in
                               enumerate(["dull", "bright", "odd", "warm", "long"] * 6)))
    config = tmp_path / "distill.toml"
    config.write_text("[distill]\nembedding_cosine_weight = 1.0\nembedding_mse_weight = 1.0\n"
                      "[distill.train]\nepochs = 3\nprecision = \"fp32\"\n")
    one = _distill([], teacher, texts, tmp_path / "one", config)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _distill(TORCHRUN, teacher, texts, tmp_path / "two", config)
    assert two.returncode == 0, two.stderr[-2000:]
    manifest = json.loads(two.stdout)
    assert manifest["processes"] == 2 and manifest["task"] == "embedding"
    assert "embedding_cosine" in json.dumps(manifest["config"])
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert a.keys() == b.keys()
    key = "embeddings.word_embeddings.weight"
    assert np.abs(a[key] - _weights(teacher)[key]).max() > 1e-4  # training moved the weights
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
