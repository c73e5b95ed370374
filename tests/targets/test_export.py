from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgecompress.errors import ParityError
from edgecompress.targets import export, load_profile, load_runner, torch_runner, verify
from edgecompress.targets.runtime_util import artifact_files
from tests.models import batch, tiny_plain
from tests.targets.conftest import MODELS, TARGETS

export_impl = __import__("edgecompress.targets.export", fromlist=["_EXPORTERS"])


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("target", TARGETS)
def test_export_writes_verified_artifact_when_target_and_model_are_supported(exported, target,
                                                                          model):
    result, _, _ = exported(target, model)
    profile = load_profile(target)
    assert result.path.is_file() and result.path.suffix == profile.suffix
    # every file of the artifact (an OpenVINO IR's .xml and its .bin)
    assert result.size_bytes == sum(p.stat().st_size for p in artifact_files(result.path)) > 0
    assert result.max_abs_diff <= profile.tolerance
    assert result.agreement >= profile.min_agreement
    assert (result.format, result.scheme, result.profile) == (profile.format, "fp32", target)
    assert result.input_shape == profile.input_shape  # (1, None) for android-xnnpack
    assert result.input_shape == (profile.fixed_shape or (None, None)) or profile.format == "pte"
    # the artifact's own files only (one, or an IR's .xml + .bin): no temp leftovers, no side
    # .onnx.data
    siblings = sorted(p.name for p in result.path.parent.iterdir()
                      if p.name.startswith(f"{model}-{target}"))
    assert siblings == sorted(p.name for p in artifact_files(result.path))
    assert not list(result.path.parent.glob(".*partial*"))
    json.dumps(result.to_json())


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("target", TARGETS)
def test_export_output_matches_torch_when_batch_has_padding(exported, target, model):
    result, loaded, _ = exported(target, model)
    inputs = batch(loaded)  # 4 sentences padded to the longest; "dull" is 3 tokens + padding
    assert inputs["attention_mask"].min() == 0
    out = load_runner(result.path).run(**inputs)
    np.testing.assert_allclose(out, torch_runner(loaded.module).run(**inputs), atol=1e-4)
    # The padded row must equal the same sentence run alone without padding: masking works.
    real = int(inputs["attention_mask"][3].sum())
    alone = torch_runner(loaded.module).run(inputs["input_ids"][3:, :real],
                                            inputs["attention_mask"][3:, :real])
    np.testing.assert_allclose(out[3:], alone, atol=1e-4)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_export_leaves_training_flags_as_they_were_when_done(exported, model):
    # tiny_bert's wrapper is in training mode around an eval-mode HF model: torch.onnx.export
    # alone would come back with the whole tree in training mode (dropout on).
    _, _, (before, after) = exported("x86-cpu", model)
    assert after == before


def test_onnx_export_names_dynamic_axes_when_profile_is_dynamic(exported):
    result, _, _ = exported("x86-cpu", "tiny_bert")
    graph = onnx.load(str(result.path)).graph
    dims = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"input_ids": ["batch", "seq"], "attention_mask": ["batch", "seq"]}
    assert [o.name for o in graph.output] == ["logits"]


def test_tflite_export_has_int32_fixed_inputs_per_bucket_when_profile_has_buckets(exported):
    from ai_edge_litert.interpreter import Interpreter

    result, _, _ = exported("arm64-phone", "tiny_bert")
    interpreter = Interpreter(model_path=str(result.path))
    shapes = {}
    for key in interpreter.get_signature_list():
        details = interpreter.get_signature_runner(key).get_input_details()
        assert sorted(details) == ["attention_mask", "input_ids"]
        assert all(d["dtype"] == np.int32 for d in details.values())
        shapes[key] = [list(d["shape"]) for d in details.values()]
    assert shapes == {f"seq{n}": [[1, n], [1, n]] for n in (32, 64, 128)}
    assert result.buckets == (32, 64, 128) and result.input_shape == (1, 128)


def test_verify_raises_parity_error_when_onnx_weights_are_altered(exported, tmp_path):
    result, loaded, _ = exported("x86-cpu", "tiny_plain")
    model = onnx.load(str(result.path))
    # Scale the classifier head weight (labels, d_model). (Adding a constant would not do: the
    # pooled LayerNorm output sums to ~0.)
    head = next(t for t in model.graph.initializer if list(t.dims) == [2, 32])
    head.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(head) * 3.0, head.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ParityError) as info:
        verify(broken, loaded.module, batch(loaded), load_profile("x86-cpu"), scheme="fp32")
    assert info.value.diffs["logits"] > 1e-4 and str(broken) in str(info.value)


def test_verify_raises_parity_error_when_module_is_not_the_exported_one(exported):
    result, loaded, _ = exported("rpi5", "tiny_plain")
    other = tiny_plain(seed=1).module
    with pytest.raises(ParityError):
        verify(result.path, other, batch(loaded), load_profile("rpi5"), scheme="fp32")


def test_verify_raises_parity_error_when_argmax_disagrees_within_tolerance(exported):
    import dataclasses

    import torch

    class Negated(torch.nn.Module):  # same magnitudes, every argmax flipped
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return -self.inner(input_ids, attention_mask)

    result, loaded, _ = exported("rpi5", "tiny_plain")
    loose = dataclasses.replace(load_profile("rpi5"), tolerance=1e9)
    with pytest.raises(ParityError) as info:
        verify(result.path, Negated(loaded.module), batch(loaded), loose, scheme="fp32")
    assert info.value.diffs["logits argmax disagreement"] == 1.0


def test_verify_returns_diff_and_agreement_when_artifact_is_good(exported):
    result, loaded, _ = exported("rpi5", "tiny_bert")
    diff, agreement = verify(result.path, loaded.module, batch(loaded), load_profile("rpi5"),
                             scheme="fp32")
    assert diff <= 1e-4 and agreement == 1.0


def test_export_deletes_artifact_and_raises_when_exporter_is_off(models, tmp_path, monkeypatch):
    # An exporter that writes a different network: parity must catch it and keep no file.
    real = export_impl._EXPORTERS["onnx"]
    other = tiny_plain(seed=1).module.eval()
    monkeypatch.setitem(export_impl._EXPORTERS, "onnx",
                        lambda module, sample, profile, path: real(other, sample, profile, path))
    loaded = models["tiny_plain"]
    with pytest.raises(ParityError) as info:
        export(loaded.module, batch(loaded), load_profile("x86-cpu"), tmp_path, scheme="fp32")
    assert str(tmp_path / "model.onnx") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_export_raises_value_error_when_sample_lacks_attention_mask(models, tmp_path):
    loaded = models["tiny_plain"]
    with pytest.raises(ValueError, match="attention_mask"):
        export(loaded.module, {"input_ids": batch(loaded)["input_ids"]}, load_profile("rpi5"),
               tmp_path)


def test_export_replaces_previous_artifact_when_run_twice(exported, tmp_path):
    result, loaded, _ = exported("x86-cpu", "tiny_plain")
    target = tmp_path / "model.onnx"
    shutil.copy(result.path, target)
    target.write_bytes(b"stale")
    again = export(loaded.module, batch(loaded), load_profile("x86-cpu"), tmp_path,
                   scheme="fp32")
    assert again.path == target and target.stat().st_size == result.size_bytes


def test_verify_raises_parity_error_when_one_bucket_signature_is_off(exported, monkeypatch):
    from edgecompress.targets import runtimes

    result, loaded, _ = exported("arm64-phone", "tiny_bert")
    profile = load_profile("arm64-phone")
    verify(result.path, loaded.module, batch(loaded), profile, scheme="fp32")  # all good
    invoke = runtimes._LiteRtSignature.invoke
    # Only the 64-token signature is wrong; the sample's sentences are all shorter than 32, so
    # a gate running rows on their own bucket alone would never see it.
    monkeypatch.setattr(runtimes._LiteRtSignature, "invoke", lambda self, feed: invoke(
        self, feed) + (1.0 if self.width == 64 else 0.0))
    with pytest.raises(ParityError):
        verify(result.path, loaded.module, batch(loaded), profile, scheme="fp32")
