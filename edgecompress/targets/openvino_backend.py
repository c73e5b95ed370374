"""The OpenVINO target (x86-openvino): torch -> OpenVINO IR (`<name>.xml` graph + `<name>.bin`
weights), NNCF post-training int8, and the OpenVINO CPU runtime that runs it. OpenVINO and NNCF
are an optional extra (`require` names how to install them).

Export: `openvino.convert_model(module, example_input=...)` straight from the torch module with
dynamic (batch, seq) inputs (NNCF's OpenVINO-backend path: convert, quantize the `ov.Model`,
save), weights kept fp32 in the .bin (`compress_to_fp16=False`; the fp32 scheme is the fp32
model). Converting our fp32 ONNX instead gave the demo's student the same accuracy (81.40 %) and
size but ran slower (NNCF int8, 1 thread, CPU time: 6.53 vs 6.28 ms at 128 tokens, 3.27 vs
2.89 ms over real lengths). nncf-int8: `nncf.quantize(model, Dataset(calibration rows),
model_type=TRANSFORMER)`, as NNCF's docs recommend for Transformers (SmoothQuant, fast bias
correction, no quantizers on the attention's softmax path), one calibration row at a time, the
run's own calibration sentences.

The inference precision hint (the precision of the ops left in float: on AVX512-BF16 CPUs
OpenVINO defaults to bf16) is the profile's `inference_precision`; it is written into the IR's
runtime info, so whoever loads the file (our runner, the bench child) compiles it the same way,
and the runner reports the precision the compiled model uses.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.extras import require
from edgecompress.targets.inputs import IMAGE_INPUTS, TEXT_INPUTS, is_image, sample_inputs
from edgecompress.targets.runtime_util import package_version, quiet_exporters, quiet_fd2

EXPORTER = "openvino.convert_model (torch)"
QUANTIZER = "nncf.quantize (model_type=TRANSFORMER)"
# Where the IR keeps the hint: rt_info <edgecompress><inference_precision value="f32"/>
HINT_KEY = ["edgecompress", "inference_precision"]


def convert(module, sample: dict, profile, path: Path) -> tuple[str, str]:
    """Write `module` as an fp32 OpenVINO IR at `path` (.xml, and the .bin beside it) with
    dynamic batch (and sequence) axes; returns (exporter, version)."""
    require("openvino", f"target {profile.name}")
    import openvino as ov
    import torch

    names = sample_inputs(sample)
    example = tuple(torch.from_numpy(np.ascontiguousarray(sample[n])) for n in names)
    if is_image(names):  # (batch, C, H, W): batch dynamic, the patch grid fixed by the model
        shapes = [(n, ov.PartialShape([-1, *sample[n].shape[1:]]), ov.Type.f32) for n in names]
    else:  # int64 (batch, seq), both dynamic
        shapes = [(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names]
    with torch.no_grad(), quiet_exporters(), quiet_fd2():
        model = ov.convert_model(module, example_input=example, input=shapes)
    # our names, by position: tracing may name an input after a graph value ("9")
    for port, name in zip(model.inputs, names):
        port.get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({"logits"})
    if profile.inference_precision:
        model.set_rt_info(profile.inference_precision, HINT_KEY)
    ov.save_model(model, str(path), compress_to_fp16=False)
    return EXPORTER, package_version("openvino")


def quantize_nncf(src: Path, dst: Path, rows: list[dict], float_scopes: tuple[str, ...]) -> dict:
    """NNCF int8 of the fp32 IR `src` into `dst`, calibrated on `rows` (one-row feeds, in order);
    returns the manifest's facts. UserError for layers asked to stay in float (not mapped to
    OpenVINO node names) or a missing extra."""
    require("openvino", f"artifact {src}")
    if float_scopes:
        raise UserError("keeping layers in float (the accuracy fallback, max_drop) is not "
                        "available for openvino artifacts")
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(src))
    hint = precision_hint(model)
    # NNCF draws rich progress bars on stdout and logs on stderr; its errors still raise
    with quiet_fd2(), contextlib.redirect_stdout(io.StringIO()):
        quantized = nncf.quantize(model, nncf.Dataset(rows), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(rows))
    if hint:
        quantized.set_rt_info(hint, HINT_KEY)
    ov.save_model(quantized, str(dst), compress_to_fp16=False)
    return {"tool": QUANTIZER, "tool_version": package_version("nncf"), "samples": len(rows),
            "subset_size": len(rows), "inference_precision": hint}


def precision_hint(model) -> str | None:
    """The inference precision the IR asks for (its rt_info), None when it names none."""
    return model.get_rt_info(HINT_KEY).astype(str) if model.has_rt_info(HINT_KEY) else None


class OpenVINOBackend:
    """OpenVINO's CPU plugin on an IR: any batch and sequence, `threads` inference threads
    (INFERENCE_NUM_THREADS), latency mode, and the IR's precision hint. `inference_precision` is
    what the compiled model reports it runs its float ops in."""

    name = "openvino"
    fixed_shape = None

    def __init__(self, path: Path, threads: int):
        require("openvino", f"artifact {path}")
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        found = [i.get_any_name() for i in model.inputs]
        self.input_names = next((names for names in (TEXT_INPUTS, IMAGE_INPUTS)
                                 if sorted(names) == sorted(found)), None)
        if self.input_names is None or len(model.outputs) != 1:
            raise UserError(f"{path}: expected inputs (input_ids, attention_mask) or "
                            f"(pixel_values) and one output, got {', '.join(found)} and "
                            f"{len(model.outputs)} output(s)")
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        hint = precision_hint(model)
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        with quiet_fd2():
            compiled = core.compile_model(model, "CPU", config)
        self._request, self._output = compiled.create_infer_request(), compiled.output(0)
        self.threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        self.inference_precision = _type_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.version = package_version("openvino")  # ov.__version__ carries the build id
        self._dtypes = {i.get_any_name(): (np.float32 if i.get_any_name() == "pixel_values"
                                           else np.int64) for i in model.inputs}
        self.shapes = {n: (self._dtypes[n], tuple(None if d.is_dynamic else d.get_length()
                                                  for d in model.input(n).get_partial_shape()))
                       for n in self.input_names}

    @property
    def options(self) -> dict:
        """What the runtime was asked and runs with, for bench JSON and manifests."""
        return {"inference_precision": self.inference_precision, "threads": self.threads}

    def feed(self, inputs):
        return {n: np.ascontiguousarray(inputs[n], dtype=self._dtypes[n])
                for n in self.input_names}

    def invoke(self, feed):
        return self._request.infer(feed)[self._output]


def _type_name(value) -> str:
    """'f32' / 'bf16' from the plugin's element type (Type: 'bfloat16' -> 'bf16')."""
    text = str(getattr(value, "get_type_name", lambda: value)())
    return {"bfloat16": "bf16", "float32": "f32", "float16": "f16"}.get(text, text)
