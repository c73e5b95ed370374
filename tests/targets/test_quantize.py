from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgecompress.errors import ParityError, UserError
from edgecompress.targets import export, load_profile, load_runner, torch_runner
from edgecompress.targets.quantize import QuantOptions, quantize_artifact
from edgecompress.targets.schemes import SCHEMES
from tests.models import batch

# format -> a target that runs every scheme of that format (tiny models, 4 parity sentences)
ANY = {"onnx": "x86-cpu", "tflite": "rpi5"}
# int4 embeddings flip the near-tie argmaxes of a random tiny model (its logits differ by ~1e-3):
# checked on their own below, and through the full gate on the real model in the demo
CASES = [(fmt, name) for fmt in ANY for name in SCHEMES[fmt]
         if name not in ("fp32", "dynamic-int8-int4-embedding")]


def _open(target: str):
    """The target's profile allowed to run every scheme of its format (one signature: static
    int8 calibrates a single one)."""
    return dataclasses.replace(load_profile(target), schemes=(), buckets=())


@pytest.fixture(scope="module")
def quantized(exported, tmp_path_factory):
    """quantized(fmt, scheme) -> (ExportResult, fp32 ExportResult, LoadedModel), from one base."""
    cache, out = {}, tmp_path_factory.mktemp("quantized")

    def get(fmt: str, scheme: str):
        if (fmt, scheme) not in cache:
            # tiny BERT: the tiny plain encoder's random logits are near-ties, which full int8
            # flips (argmax agreement is part of the gate)
            loaded = exported(ANY[fmt], "tiny_bert")[1]
            if (fmt, "fp32") not in cache:
                cache[fmt, "fp32"] = (export(loaded.module, batch(loaded), _open(ANY[fmt]), out,
                                             name=f"{fmt}-fp32", scheme="fp32"), None, loaded)
            base = cache[fmt, "fp32"][0]
            options = QuantOptions(calibration=(batch(loaded),), module=loaded.module)
            result = export(loaded.module, batch(loaded), _open(ANY[fmt]), out,
                            name=f"{fmt}-{scheme}", scheme=scheme, quant=options, base=base)
            cache[fmt, scheme] = (result, base, loaded)
        return cache[fmt, scheme]

    return get


@pytest.mark.parametrize("fmt, scheme", CASES)
def test_quantized_export_passes_its_scheme_gate_when_scheme_is_supported(quantized, fmt, scheme):
    result, base, loaded = quantized(fmt, scheme)
    tolerance, agreement = _open(ANY[fmt]).parity(scheme)
    assert (result.scheme, result.tolerance, result.min_agreement) == (scheme, tolerance, agreement)
    assert result.max_abs_diff <= tolerance and result.agreement >= agreement
    assert result.quantization["scheme"] == scheme and result.path.is_file()
    # really transformed: not the fp32 file, and it runs like torch within the tolerance
    assert result.path.read_bytes() != base.path.read_bytes()
    inputs = batch(loaded)
    out = load_runner(result.path).run(**inputs)
    assert np.max(np.abs(out - torch_runner(loaded.module).run(**inputs))) <= tolerance


def test_onnx_a16w8_has_int16_activations_and_int8_weights_when_static(quantized):
    import onnx

    a16, base, _ = quantized("onnx", "static-a16w8")
    a8, _, _ = quantized("onnx", "static-int8")
    model = onnx.load(str(a16.path))
    zero_points = {i.name: i.data_type for i in model.graph.initializer}
    made_by = {out: node for node in model.graph.node for out in node.output}

    def bits(tensor: str) -> int:  # activation bits of a tensor dequantized from a Q node
        dq = made_by[tensor]
        assert dq.op_type == "DequantizeLinear"
        q = made_by[dq.input[0]]
        return {onnx.TensorProto.INT16: 16, onnx.TensorProto.INT8: 8}[zero_points[q.input[2]]]

    matmuls = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    assert matmuls and {bits(n.input[0]) for n in matmuls} == {16}  # int16 activations in
    tables = {i.name: i.data_type for i in model.graph.initializer
              if i.name.endswith("_embeddings.weight_quantized")}
    assert tables and set(tables.values()) == {onnx.TensorProto.INT8}  # embeddings: int8 weights
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 21
    assert a16.quantization["activation_bits"] == 16 and a8.quantization["activation_bits"] == 8
    # Which of the two lands closer to torch depends on the CPU's int8 kernels (an avx2-only EPYC
    # measured a16w8 0.0067 against int8 0.0036; avx512-VNNI hosts the reverse): both passed
    # their gates (export raises otherwise), and the ordering is not asserted.
    assert a16.rel_error > 0 and a8.rel_error > 0  # both really quantized
    assert a16.size_bytes < 0.5 * base.size_bytes  # weights are int8 all the same


@pytest.mark.parametrize("fmt", sorted(ANY))
def test_int8_artifact_is_smaller_than_fp32_when_weights_are_quantized(quantized, fmt):
    result, base, _ = quantized(fmt, "dynamic-int8")
    assert result.size_bytes < 0.5 * base.size_bytes


@pytest.mark.parametrize("scheme", ["dynamic-int8", "weight-only-int8", "fp16"])
def test_quantized_tflite_keeps_every_length_signature_gated_when_target_has_buckets(
        exported, tmp_path, scheme):
    from ai_edge_litert.interpreter import Interpreter

    base, loaded, _ = exported("rpi5", "tiny_bert")  # signatures seq32 / seq64 / seq128
    result = export(loaded.module, batch(loaded), load_profile("rpi5"), tmp_path, scheme=scheme,
                    quant=QuantOptions(module=loaded.module), base=base)
    keys = sorted(Interpreter(model_path=str(result.path)).get_signature_list())
    assert keys == ["seq128", "seq32", "seq64"] and result.buckets == (32, 64, 128)
    assert result.sample_rows == 3 * len(batch(loaded)["input_ids"])  # gated on each signature
    assert result.size_bytes < base.size_bytes


def test_static_tflite_has_int8_logits_when_fully_integer(quantized):
    from ai_edge_litert.interpreter import Interpreter

    result, _, _ = quantized("tflite", "static-int8")
    runner = Interpreter(model_path=str(result.path)).get_signature_runner()
    (output,) = runner.get_output_details().values()
    assert output["dtype"] == np.int8 and output["quantization"][0] > 0


def test_onnx_static_records_calibration_method_when_entropy_is_asked(exported, tmp_path):
    base, loaded, _ = exported("x86-cpu", "tiny_plain")
    options = QuantOptions(calibration=(batch(loaded),), method="entropy", module=loaded.module)
    info = quantize_artifact(base.path, tmp_path / "e.onnx", SCHEMES["onnx"]["static-int8"],
                             options)
    assert info["method"] == "entropy" and info["calibration_rows"] == 4
    assert (tmp_path / "e.onnx").stat().st_size > 0


@pytest.mark.parametrize("rows", [64, 128])
def test_onnx_static_calibrates_on_every_row_when_rows_are_a_multiple_of_64(exported, tmp_path,
                                                                          rows):
    # onnxruntime 1.32 drops the rows it flushes every CalibMaxIntermediateOutputs; with that
    # option set, a multiple of 64 rows raised "No data is collected" (seen on the real model)
    base, loaded, _ = exported("x86-cpu", "tiny_plain")
    one = batch(loaded)
    many = {k: np.concatenate([v] * (rows // len(v))) for k, v in one.items()}
    options = QuantOptions(calibration=(many,), module=loaded.module)
    info = quantize_artifact(base.path, tmp_path / "s.onnx", SCHEMES["onnx"]["static-int8"],
                             options)
    assert info["calibration_rows"] == rows
    assert (tmp_path / "s.onnx").stat().st_size > 0


def test_float_scope_keeps_layer_in_float_when_named(exported, tmp_path):
    import onnx

    base, loaded, _ = exported("x86-cpu", "tiny_plain")
    options = QuantOptions(calibration=(batch(loaded),), float_scopes=("layers.1",))
    quantize_artifact(base.path, tmp_path / "f.onnx", SCHEMES["onnx"]["static-int8"], options)
    model = onnx.load(str(tmp_path / "f.onnx"))
    # layer 1's weight MatMuls keep float weights; layer 0's read int8 ones through DequantizeLinear
    float_weights = {i.name for i in model.graph.initializer
                     if i.data_type == 1 and len(i.dims) == 2}
    layer_matmuls = [n for n in model.graph.node if n.op_type == "MatMul"
                     and any(i in float_weights for i in n.input)]
    assert len(layer_matmuls) == 6  # q, k, v, out, ffn_in, ffn_out of layer 1


def test_export_raises_user_error_when_target_cannot_run_scheme(models, tmp_path):
    loaded = models["tiny_plain"]
    with pytest.raises(UserError, match="edgetpu cannot run scheme 'fp16'.*static-int8"):
        export(loaded.module, batch(loaded), load_profile("edgetpu"), tmp_path, scheme="fp16")
    assert list(tmp_path.iterdir()) == []


def test_export_raises_user_error_when_static_scheme_has_no_calibration(models, tmp_path):
    loaded = models["tiny_plain"]
    with pytest.raises(UserError, match="calibration"):
        export(loaded.module, batch(loaded), load_profile("npu-int8"), tmp_path)
    assert not list(tmp_path.glob("*.onnx"))


def test_int8_export_raises_parity_error_when_relative_error_exceeds_the_gate(quantized,
                                                                              tmp_path):
    _, base, loaded = quantized("onnx", "dynamic-int8")
    strict = dataclasses.replace(_open("x86-cpu"),
                                 parity_overrides=(("dynamic-int8", 1.0, 0.0, 1e-9),))
    with pytest.raises(ParityError, match=r"relative error [0-9.e-]+ > 1e-09"):
        export(loaded.module, batch(loaded), strict, tmp_path, scheme="dynamic-int8", base=base)
    assert list(tmp_path.iterdir()) == []


def test_int8_export_is_not_gated_on_max_abs_diff_when_agreement_and_error_hold(quantized,
                                                                              tmp_path):
    # max |diff| grows with the logits' scale: for int8 it is reported, not gated
    _, base, loaded = quantized("onnx", "dynamic-int8")
    tight = dataclasses.replace(_open("x86-cpu"),
                                parity_overrides=(("dynamic-int8", 1e-9, 0.5, 10.0),))
    result = export(loaded.module, batch(loaded), tight, tmp_path, scheme="dynamic-int8",
                    base=base)
    assert result.max_abs_diff > 1e-9 and result.gated_on == "agreement+rel_error"
    assert 0 < result.rel_error <= 10.0 and result.sample_rows == len(batch(loaded)["input_ids"])


def test_int8_gate_defaults_require_most_argmaxes_to_agree_when_scheme_is_quantized():
    for fmt in ("onnx", "tflite"):
        for spec in SCHEMES[fmt].values():
            if spec.int8:
                assert spec.min_agreement >= 0.9 and 0 < spec.max_rel_error <= 0.5


def test_profile_reads_scheme_parity_override_when_toml_has_one(tmp_path):
    text = (load_profile("x86-cpu").source.read_text()
            + "\n[parity.static-int8]\ntolerance = 0.5\nmin_agreement = 0.9\n"
            + "max_rel_error = 0.3\n")
    path = tmp_path / "p.toml"
    path.write_text(text)
    profile = load_profile(path)
    assert profile.parity("static-int8") == (0.5, 0.9)
    assert profile.gate("static-int8").max_rel_error == 0.3
    assert profile.parity("fp32") == (1e-4, 1.0)
    assert profile.parity("dynamic-int8") == (SCHEMES["onnx"]["dynamic-int8"].tolerance,
                                              SCHEMES["onnx"]["dynamic-int8"].min_agreement)


@pytest.mark.parametrize("scheme", ["dynamic-int8", "dynamic-int8-per-channel"])
def test_onnx_dynamic_keeps_the_weight_range_with_lower_error_when_rows_are_given(exported,
                                                                                tmp_path, scheme):
    # which range wins depends on the CPU's int8 kernels (VNNI or not); the invariant is that the
    # kept artifact is the measured better one and that the choice is recorded
    base, loaded, _ = exported("x86-cpu", "tiny_bert")
    options = QuantOptions(calibration=(batch(loaded),), module=loaded.module)
    info = quantize_artifact(base.path, tmp_path / "d.onnx", SCHEMES["onnx"][scheme], options)
    errors = info["reduce_range_rel_error"]
    assert errors[str(info["reduce_range"]).lower()] == min(errors.values())
    assert info["reduce_range_chosen_by"].startswith("measured on 4 rows")
    rows = [{k: v[i:i + 1] for k, v in batch(loaded).items()} for i in range(4)]
    kept = np.concatenate([load_runner(tmp_path / "d.onnx").run(**row) for row in rows])
    fp32 = np.concatenate([load_runner(base.path).run(**row) for row in rows])
    rel = float(np.linalg.norm(kept - fp32) / np.linalg.norm(fp32))
    assert rel == pytest.approx(min(errors.values()), rel=1e-4)  # the file is the chosen one


def test_onnx_dynamic_keeps_full_range_and_says_so_when_no_rows_are_given(exported, tmp_path):
    base, loaded, _ = exported("x86-cpu", "tiny_bert")
    info = quantize_artifact(base.path, tmp_path / "d.onnx", SCHEMES["onnx"]["dynamic-int8"],
                             QuantOptions(module=loaded.module))
    assert info["reduce_range"] is False
    assert "no rows" in info["reduce_range_chosen_by"]


def test_int4_embedding_shrinks_the_artifact_and_keeps_the_error_bound(exported, tmp_path):
    import onnx

    base, loaded, _ = exported("x86-cpu", "tiny_bert")
    options = QuantOptions(calibration=(batch(loaded),), module=loaded.module)
    schemes = SCHEMES["onnx"]
    paths = {}
    for name in ("dynamic-int8-per-channel", "dynamic-int8-int4-embedding"):
        paths[name] = tmp_path / f"{name}.onnx"
        quantize_artifact(base.path, paths[name], schemes[name], options)
    int8, int4 = paths["dynamic-int8-per-channel"], paths["dynamic-int8-int4-embedding"]
    ops = [node.op_type for node in onnx.load(str(int4)).graph.node]
    assert "GatherBlockQuantized" in ops and "Gather" not in ops[:3]
    # the 30522 x 32 token embedding is most of the tiny model: int4 plus one float32 scale per
    # 32 values is 5 bits a weight where int8 is 8 (0.70 measured on the whole file)
    assert int4.stat().st_size < 0.8 * int8.stat().st_size
    inputs = batch(loaded)
    fp32 = load_runner(base.path).run(**inputs)
    out = load_runner(int4).run(**inputs)
    rel = float(np.linalg.norm(out - fp32) / np.linalg.norm(fp32))
    assert rel <= schemes["dynamic-int8-int4-embedding"].max_rel_error
