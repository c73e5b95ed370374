"""A sentence encoder (mean-pooled, no classification head) through the whole chain: pruned,
distilled back toward its teacher's embeddings on unlabelled text, then quantized dynamic int8 for
one ONNX, one TFLite and the ExecuTorch target, each kept only by the cosine parity gate."""

from __future__ import annotations

import pytest

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.distill.config import DistillConfig
from edgecompress.compress.distill.stage import DistillRequest, run_distill
from edgecompress.compress.models.loading import load_model
from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.prune.stage import PruneRequest, run_prune
from edgecompress.compress.quantize.stage import QuantizeConfig, QuantizeRequest, run_quantize
from edgecompress.compress.training.train import FinetuneConfig
from edgecompress.targets import load_runner
from tests.models import save_tiny, tiny_sentence_encoder
from tests.targets.conftest import needs_executorch


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """(root, texts file, prune manifest): the tiny encoder pruned by a quarter of its heads and
    FFN neurons, then distilled toward the unpruned encoder's embeddings."""
    root = tmp_path_factory.mktemp("embedding-chain")
    teacher = save_tiny(tiny_sentence_encoder(), root / "teacher")
    texts = root / "texts.csv"  # unlabelled text: a sentence encoder learns from its teacher
    texts.write_text("text\n" + "\n".join(
        f"sentence {i} about a {w} film"
        for i, w in enumerate(["good", "dull", "odd", "warm", "noisy"] * 12)))
    pruned = run_prune(PruneRequest(model=str(teacher), out=root / "pruned",
                                    data=DataRef(str(texts)),
                                    config=PruneConfig(heads=0.25, ffn=0.25,
                                                       importance="magnitude")))
    train = FinetuneConfig(epochs=1, batch_size=8, learning_rate=1e-3, max_length=32,
                           precision="fp32")
    run_distill(DistillRequest(teacher=str(teacher), student=str(root / "pruned"),
                               data=DataRef(str(texts)), out=root / "student",
                               config=DistillConfig(train=train, embedding_cosine_weight=1.0)))
    return root, texts, pruned


def test_pruned_and_distilled_encoder_keeps_its_task_and_smaller_shape(chain):
    root, _, pruned = chain
    assert pruned["params"]["after"] < pruned["params"]["before"]
    student = load_model(root / "student")
    assert student.task == "embedding"
    widths = [layer.intermediate.dense.out_features for layer in student.module.hf.encoder.layer]
    assert sum(widths) == 96  # 2 x 64 FFN neurons, a quarter cut (global scope: any layer)


@pytest.mark.parametrize("target", ["x86-cpu", "arm64-phone",  # android-xnnpack: -m slow
                                    pytest.param("android-xnnpack",
                                                 marks=(needs_executorch, pytest.mark.slow))])
def test_distilled_encoder_passes_the_cosine_gate_when_quantized_for_target(chain, target,
                                                                           tmp_path):
    root, texts, _ = chain
    manifest = run_quantize(QuantizeRequest(model=str(root / "student"), out=tmp_path / target,
                                            data=DataRef(str(texts)),
                                            config=QuantizeConfig(target=target)))
    parity = manifest["parity"]
    assert manifest["scheme"] == "dynamic-int8" and parity["gated_on"] == "cosine+rel_error"
    assert parity["min_cosine"] <= parity["cosine"] <= 1.0 + 1e-9
    assert parity["rel_error"] <= parity["max_rel_error"]
    artifact = tmp_path / target / manifest["artifact"]
    assert artifact.suffix == {"x86-cpu": ".onnx", "arm64-phone": ".tflite",
                               "android-xnnpack": ".pte"}[target]
    assert load_runner(artifact).run([[101, 2204, 102]], [[1, 1, 1]]).shape == (1, 32)
