import pytest
import torch

from edgecompress.compress.distill import (
    DistillConfig,
    Run,
    TrainData,
    build_student,
    distill_train,
    forward_features,
    resolve_plan,
    soft_kl,
)
from edgecompress.compress.distill.students import make_projections
from edgecompress.compress.training.train import FinetuneConfig
from tests.compress.distill.conftest import LABELS, TEXTS, sharp_teacher
from tests.models import batch

FRESH = "fresh:layers=1,hidden=16,heads=2,ffn=32"


class Interrupt(Exception):
    pass


def _run(teacher, ckpt, config, *, spec=FRESH, seed=0, dev=True):
    torch.manual_seed(seed)
    student = build_student(spec, teacher)
    plan = resolve_plan(teacher, student, config)
    projections = make_projections(teacher, student.loaded, plan)
    data = TrainData(tuple(TEXTS), tuple(LABELS[:-4]) + (-1,) * 4)  # last 4 unlabelled
    dev_data = (tuple(TEXTS[:8]), tuple(LABELS[:8])) if dev else None
    return Run(teacher, student.loaded, projections, plan, config, data, ckpt, dev_data)


def _kl_to_teacher(run):
    inputs = batch(run.teacher)
    ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
    with torch.no_grad():
        t = forward_features(run.teacher, ids, mask)
        s = forward_features(run.student, ids, mask)
    return float(soft_kl(s.logits, t.logits, 1.0))


def test_kd_lowers_the_kl_to_the_teacher_when_trained_a_few_steps(teacher, tmp_path):
    train = FinetuneConfig(epochs=6, batch_size=8, learning_rate=3e-3, checkpoint_every=1000)
    run = _run(teacher, tmp_path / "ckpt", DistillConfig(train=train, ce_weight=0.0), dev=False)
    before = _kl_to_teacher(run)
    result = distill_train(run)
    assert result["steps_done"] == 18 and result["stopped"] is None
    assert _kl_to_teacher(run) < 0.5 * before


def _state(run):
    return {k: v.clone() for k, v in run.student.module.state_dict().items()} | {
        f"proj.{k}": v.clone() for k, v in run.projections.state_dict().items()}


def test_resume_after_interruption_reproduces_the_uninterrupted_weights(tmp_path):
    train = FinetuneConfig(epochs=3, batch_size=8, learning_rate=1e-3, checkpoint_every=3)
    config = DistillConfig(train=train, hidden_weight=1.0, attention_weight=1.0, eval_every=2)
    straight = _run(sharp_teacher(), tmp_path / "a", config)
    expected = distill_train(straight)

    def stop_at_seven(step, total, loss, parts):
        if step == 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        distill_train(_run(sharp_teacher(), tmp_path / "b", config), stop_at_seven)
    resumed = _run(sharp_teacher(), tmp_path / "b", config, seed=5)  # other init: from ckpt
    result = distill_train(resumed)
    assert result["resumed_from"] == 6
    assert result["history"] == expected["history"]
    assert result["best_step"] == expected["best_step"]
    for key, value in _state(straight).items():
        torch.testing.assert_close(_state(resumed)[key], value, rtol=0, atol=1e-6)


def test_training_stops_early_when_dev_accuracy_stops_improving(teacher, tmp_path):
    train = FinetuneConfig(epochs=20, batch_size=8, learning_rate=1e-9, checkpoint_every=1000)
    config = DistillConfig(train=train, eval_every=1, patience=2)
    result = distill_train(_run(teacher, tmp_path / "ckpt", config))
    assert result["stopped"] == "early-stopping"
    assert result["steps_done"] == 3 and result["best_step"] == 1


def test_training_stops_and_checkpoints_when_out_of_minutes(teacher, tmp_path):
    train = FinetuneConfig(epochs=5, batch_size=8, learning_rate=1e-3, checkpoint_every=1000)
    config = DistillConfig(train=train, max_minutes=1e-6)
    run = _run(teacher, tmp_path / "ckpt", config, dev=False)
    result = distill_train(run)
    assert result["stopped"] == "max-minutes" and result["steps_done"] == 1
    again = distill_train(_run(teacher, tmp_path / "ckpt", config, dev=False))
    assert again["resumed_from"] == 1 and again["steps_done"] == 2
    unlimited = DistillConfig(train=train, max_minutes=None)
    rest = distill_train(_run(teacher, tmp_path / "ckpt", unlimited, dev=False))
    assert rest["resumed_from"] == 2 and rest["steps_done"] == rest["steps"]
    assert rest["stopped"] is None
