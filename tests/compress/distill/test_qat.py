import numpy as np
import pytest
import torch

from edgecompress.compress.distill import (
    DistillConfig,
    QATConfig,
    distill_train,
    prepare_qat,
    qat_config_for,
    strip_fake_quant,
)
from edgecompress.compress.distill.qat import FakeQuantLinear, has_fake_quant
from edgecompress.compress.training.train import FinetuneConfig
from edgecompress.targets import export, load_profile, torch_runner
from tests.compress.distill.test_loop import _run
from tests.models import batch


def test_qat_config_matches_the_target_scheme_when_built_from_a_profile():
    x86 = qat_config_for(load_profile("x86-cpu"), "dynamic-int8")
    assert (x86.per_channel, x86.dynamic_activations) == (False, True)  # ORT: per tensor
    phone = qat_config_for(load_profile("arm64-phone"), "dynamic-int8")
    assert phone.per_channel
    with pytest.raises(ValueError, match="int8"):
        qat_config_for(load_profile("x86-cpu"), "fp16")


def test_fake_quant_rounds_weights_to_int8_levels_when_prepared(teacher):
    count = prepare_qat(teacher.module, QATConfig(per_channel=True))
    assert count == 2 * 6 + 2  # per layer: q, k, v, out, ffn in, ffn out; + pooler, classifier
    inputs = batch(teacher)
    ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
    teacher.module(ids, mask)  # observers see real weights and activations
    wrapped = teacher.module.hf.classifier
    assert isinstance(wrapped, FakeQuantLinear)
    quantized = wrapped.weight_fake_quant(wrapped.linear.weight)
    levels = quantized / wrapped.weight_fake_quant.scale[:, None]  # per output row
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-3)
    assert strip_fake_quant(teacher.module) == count and not has_fake_quant(teacher.module)


def test_qat_student_exports_and_passes_parity_when_trained_with_fake_quant(teacher, tmp_path):
    train = FinetuneConfig(epochs=1, batch_size=8, learning_rate=1e-3, checkpoint_every=2)
    run = _run(teacher, tmp_path / "ckpt", DistillConfig(train=train), spec="layers:1",
               dev=False)
    profile = load_profile("x86-cpu")
    prepare_qat(run.student.module, qat_config_for(profile, "dynamic-int8"))
    distill_train(run)
    strip_fake_quant(run.student.module)
    sample = batch(run.student)
    int8 = export(run.student.module, sample, profile, tmp_path / "int8", scheme="dynamic-int8")
    tolerance, min_agreement = profile.parity("dynamic-int8")
    assert int8.path.is_file() and int8.scheme == "dynamic-int8"
    assert int8.max_abs_diff <= tolerance and int8.agreement >= min_agreement
    logits = torch_runner(run.student.module).run(**sample)
    assert np.isfinite(logits).all()
