"""A tiny ViT (and DeiT) through the same stages as text models: prune (heads, FFN, layers) ->
distill (logits + hidden states) -> quantize / export for one ONNX and one TFLite target, each
artifact passing its parity gate, then eval and bench on the artifact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.distill.config import DistillConfig
from edgecompress.compress.distill.stage import DistillRequest, run_distill
from edgecompress.compress.models.loading import load_model
from edgecompress.compress.pipeline.commands import evaluate_spec
from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.prune.stage import PruneRequest, run_prune
from edgecompress.compress.quantize.stage import QuantizeConfig, QuantizeRequest, run_quantize
from edgecompress.compress.training.train import FinetuneConfig
from edgecompress.targets import bench, load_profile, load_runner, torch_runner
from tests.compress.vision.conftest import CLASSES
from tests.targets.conftest import needs_executorch


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, tiny_vit_dir, image_folder):
    """The tiny ViT pruned (a quarter of heads and FFN, layer 1 dropped), then distilled."""
    root = tmp_path_factory.mktemp("chain")
    pruned = run_prune(PruneRequest(model=str(tiny_vit_dir), out=root / "pruned",
                                    data=DataRef(str(image_folder)),
                                    config=PruneConfig(heads=0.25, ffn=0.25, keep_layers=(0,))))
    train = FinetuneConfig(epochs=1, batch_size=8, learning_rate=1e-3, precision="fp32")
    run_distill(DistillRequest(teacher=str(tiny_vit_dir), student=str(root / "pruned"),
                               data=DataRef(str(image_folder)), out=root / "student",
                               config=DistillConfig(train=train, hidden_weight=1.0)))
    return root, pruned


def test_vit_prune_cuts_heads_ffn_and_layers_and_reloads_equal(distilled, tiny_vit_dir,
                                                                image_folder):
    root, manifest = distilled
    assert manifest["shapes_before"] == {"heads": [4, 4], "ffn": [64, 64]}
    assert manifest["shapes_after"] == {"heads": [3], "ffn": [48]}
    assert manifest["params"]["after"] < manifest["params"]["before"]
    reloaded = load_model(root / "pruned")
    assert reloaded.labels == CLASSES
    pixels = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    again = load_model(root / "pruned")
    np.testing.assert_array_equal(torch_runner(reloaded.module).run(pixels),
                                  torch_runner(again.module).run(pixels))


def test_vit_distill_writes_a_student_of_the_pruned_shape(distilled):
    root, _ = distilled
    student = load_model(root / "student")
    assert len(student.module.hf.vit.layers) == 1
    assert student.module.hf.vit.layers[0].mlp.fc1.out_features == 48
    before = load_model(root / "pruned").module.state_dict()
    after = student.module.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in after)  # training moved weights


@pytest.mark.parametrize("target", ["x86-cpu", "arm64-phone",  # android-xnnpack: -m slow
                                    pytest.param("android-xnnpack",
                                                 marks=(needs_executorch, pytest.mark.slow))])
def test_vit_chain_passes_parity_when_quantized_for_target(distilled, image_folder, target,
                                                           tmp_path):
    root, _ = distilled
    manifest = run_quantize(QuantizeRequest(model=str(root / "student"), out=tmp_path / target,
                                            data=DataRef(str(image_folder)),
                                            config=QuantizeConfig(target=target)))
    parity = manifest["parity"]
    assert manifest["scheme"] == "dynamic-int8"
    assert parity["agreement"] >= parity["min_agreement"]
    assert parity["rel_error"] <= parity["max_rel_error"]
    assert manifest["modality"] == "image" and manifest["image_shape"] == [1, 8, 8]
    artifact = tmp_path / target / manifest["artifact"]
    runner = load_runner(artifact)
    assert runner.input_names == ("pixel_values",)
    result = evaluate_spec(str(artifact), str(image_folder), split="test")
    assert result["n"] == 4 and result["split"] == "test"
    assert load_profile(target).suffix == artifact.suffix  # .onnx, .tflite, .pte
    timing = bench(artifact, load_profile(target), warmup=1, runs=3)
    assert timing["p50_ms"] > 0 and timing["seq_len"] == 0


@pytest.mark.parametrize("target,scheme", [("x86-cpu", "static-int8"), ("arm64-phone", "fp16")])
def test_vit_export_passes_parity_when_scheme_is(distilled, image_folder, target, scheme,
                                                 tmp_path):
    root, _ = distilled
    manifest = run_quantize(QuantizeRequest(model=str(root / "student"), out=tmp_path / scheme,
                                            data=DataRef(str(image_folder)),
                                            config=QuantizeConfig(target=target, scheme=scheme,
                                                                  calibration_samples=16)))
    assert manifest["scheme"] == scheme
    assert manifest["parity"]["agreement"] >= manifest["parity"]["min_agreement"]


def test_fixed_shape_runner_refuses_images_of_another_size(distilled, image_folder, tmp_path):
    from edgecompress.errors import UserError

    root, _ = distilled
    manifest = run_quantize(QuantizeRequest(model=str(root / "student"), out=tmp_path / "t",
                                            data=DataRef(str(image_folder)),
                                            config=QuantizeConfig(target="arm64-phone",
                                                                  scheme="fp32")))
    runner = load_runner(tmp_path / "t" / manifest["artifact"])
    assert runner.run(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 2)  # batch 1 chunks
    with pytest.raises(UserError, match=r"images of shape \(1, 8, 8\)"):
        runner.run(np.zeros((1, 1, 9, 9), np.float32))


def test_deit_loads_and_exports_through_the_parity_gate(tmp_path, image_folder):
    from transformers import DeiTConfig, DeiTForImageClassification

    from edgecompress.compress.evaluation.artifacts import parity_sample
    from edgecompress.compress.models.vision import ImageProcessor
    from edgecompress.targets import export

    config = DeiTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        num_labels=2, id2label=dict(enumerate(CLASSES)))
    torch.manual_seed(0)
    DeiTForImageClassification(config).save_pretrained(str(tmp_path / "deit"))
    ImageProcessor(8, 8, 1).save_pretrained(tmp_path / "deit")
    loaded = load_model(tmp_path / "deit")
    assert loaded.labels == CLASSES and type(loaded.module).__name__ == "ImageClassifierModule"
    sample = parity_sample(loaded.tokenizer, 128)
    for target in ("x86-cpu", "arm64-phone"):  # fp32: a random head's near-ties flip under int8
        result = export(loaded.module, sample, load_profile(target), tmp_path / target,
                        scheme="fp32")
        assert result.agreement == 1.0 and result.max_abs_diff <= result.tolerance
        assert result.input_shape[1:] == (1, 8, 8)
