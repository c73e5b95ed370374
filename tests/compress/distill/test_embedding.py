"""Distilling a sentence encoder: embedding losses, the loop on mean-pooled embeddings, the stage
on unlabelled text."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.distill import DistillConfig, Run, TrainData, distill_train
from edgecompress.compress.distill.embedding import EmbeddingDev, embed
from edgecompress.compress.distill.losses import LossPlan, embedding_cosine, embedding_mse
from edgecompress.compress.distill.students import build_student, resolve_plan
from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.training.train import FinetuneConfig
from tests.compress.distill.conftest import TEXTS, sharp_teacher
from tests.models import save_tiny, tiny_sentence_encoder

runner = CliRunner()


def _cosine_loss(student, teacher, texts) -> float:
    s, t = embed(student, texts, 32), embed(teacher, texts, 32)
    return float(embedding_cosine(torch.from_numpy(s), torch.from_numpy(t)))


def test_embedding_losses_are_zero_when_student_equals_teacher():
    x = torch.randn(5, 16)
    assert float(embedding_cosine(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(embedding_mse(x, x)) == 0.0
    assert float(embedding_cosine(x, -x)) == pytest.approx(2.0, abs=1e-6)


def test_embedding_losses_stay_exact_when_batch_is_split_into_row_shards():
    # torchrun weights each shard's mean by its share of the batch (distributed.py)
    student, teacher = torch.randn(7, 8), torch.randn(7, 8)
    for loss in (embedding_cosine, embedding_mse):
        sharded = (3 * loss(student[:3], teacher[:3]) + 4 * loss(student[3:], teacher[3:])) / 7
        assert float(sharded) == pytest.approx(float(loss(student, teacher)), rel=1e-6)


def test_distill_config_raises_when_embedding_weight_is_negative():
    with pytest.raises(ValueError, match="embedding_cosine_weight"):
        DistillConfig(embedding_cosine_weight=-1.0)


def test_resolve_plan_skips_logit_losses_when_teacher_is_sentence_encoder():
    teacher = tiny_sentence_encoder()
    plan = resolve_plan(teacher, build_student("layers:1", teacher),
                        DistillConfig(embedding_cosine_weight=1.0))
    assert plan.embedding and not plan.logits
    assert any("logit losses" in note for note in plan.notes)


def test_resolve_plan_skips_embedding_losses_when_teacher_is_classifier():
    teacher = sharp_teacher()
    plan = resolve_plan(teacher, build_student("layers:1", teacher),
                        DistillConfig(embedding_mse_weight=1.0))
    assert plan.logits and not plan.embedding
    assert any("embedding losses skipped" in note for note in plan.notes)


def test_embedding_distillation_lowers_cosine_loss_when_student_trains_on_teacher(tmp_path):
    teacher, student = tiny_sentence_encoder(seed=0), tiny_sentence_encoder(seed=1, layers=1)
    before = _cosine_loss(student, teacher, TEXTS)
    config = DistillConfig(train=FinetuneConfig(epochs=10, batch_size=8, learning_rate=3e-3,
                                                max_length=32), embedding_cosine_weight=1.0,
                           embedding_mse_weight=1.0)
    dev = EmbeddingDev(tuple(TEXTS[:6]), teacher=embed(teacher, TEXTS[:6], 32))
    run = Run(teacher, student, torch.nn.ModuleDict(), LossPlan(logits=False, embedding=True),
              config, TrainData(tuple(TEXTS), (-1,) * len(TEXTS)), tmp_path / "ckpt",
              embedding_dev=dev)
    result = distill_train(run)
    after = _cosine_loss(student, teacher, TEXTS)
    assert after < 0.5 * before
    assert result["dev_metric"] == "teacher_cosine" and result["best_dev_score"] > 1 - before
    save_model(student, tmp_path / "student")
    reloaded = load_model(tmp_path / "student")
    assert reloaded.task == "embedding"
    np.testing.assert_allclose(embed(reloaded, TEXTS, 32), embed(student, TEXTS, 32),
                               atol=1e-5)


def test_distill_cli_trains_sentence_encoder_when_dataset_is_a_text_file(tmp_path):
    teacher_dir = save_tiny(tiny_sentence_encoder(), tmp_path / "teacher")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"sentence {i} about a film" for i in range(40)))
    out = tmp_path / "student"
    result = runner.invoke(app, ["distill", "--teacher", str(teacher_dir), "--student",
                                 "layers:1", "--dataset", str(texts), "--out", str(out),
                                 "--batch-size", "8", "--max-steps", "3",
                                 "--embedding-cosine-weight", "1", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["task"] == "embedding" and manifest["dev_metric"] == "teacher_cosine"
    assert manifest["split_sizes"] == {"train": 33, "dev": 4, "test": 3}  # 10 %, then 10 %
    assert 0 <= manifest["test"]["retrieval"]["recall_at_k"] <= 1
    assert -1 <= manifest["test"]["teacher_cosine"] <= 1
    reloaded = load_model(out)
    assert reloaded.task == "embedding" and len(reloaded.module.hf.encoder.layer) == 1


def test_check_compatible_raises_when_student_task_differs_from_teacher():
    from edgecompress.compress.distill.students import check_compatible
    from edgecompress.errors import UserError

    with pytest.raises(UserError, match="same task"):
        check_compatible(tiny_sentence_encoder(), sharp_teacher())


def test_embedding_dev_scores_spearman_when_similarity_pairs_are_given():
    teacher = tiny_sentence_encoder()
    pairs = ((0, 1, 0.9), (0, 2, 0.1), (1, 2, 0.2), (2, 3, 0.7))
    dev = EmbeddingDev(tuple(TEXTS[:4]), pairs)
    assert dev.metric == "spearman" and -1.0 <= dev.score(teacher, 32) <= 1.0
    assert EmbeddingDev(("a",), teacher=np.ones((1, 32))).metric == "teacher_cosine"


def test_summary_lines_name_dev_metric_and_retrieval_when_task_is_embedding():
    from edgecompress.cli.distill_summary import summary_lines

    shape = {"layers": 1, "params": 10, "non_embedding_params": 5, "encoder_layer_params": 4}
    manifest = {"student": shape, "teacher_shape": {**shape, "non_embedding_params": 10,
                                                    "encoder_layer_params": 8},
                "layer_map": [[0, 1]], "plan": {"notes": []}, "steps_done": 3, "steps": 3,
                "seconds": 1.0, "resumed_from": 0, "stopped": None, "best_step": 3,
                "dev_metric": "teacher_cosine", "best_dev_score": 0.9876,
                "best_dev_accuracy": None, "task": "embedding",
                "test": {"n": 4, "teacher_cosine": 0.95,
                         "retrieval": {"k": 3, "recall_at_k": 0.5, "mrr": 0.75, "n": 4}}}
    text = "\n".join(summary_lines(manifest))
    assert "best dev teacher cosine 0.9876 at step 3" in text
    assert "recall@3 0.500, MRR 0.750" in text
