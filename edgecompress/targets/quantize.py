"""Quantize an exported fp32 artifact into a scheme's form, per format.

ONNX goes through `onnxruntime.quantization` (dynamic int8 per tensor / per channel, static QDQ
int8 weights with int8 or int16 (a16w8) activations and a calibration reader over real samples:
min-max, entropy or percentile) and `onnxruntime.transformers.float16` (fp16 with fp32 I/O).
TFLite goes through ai-edge-quantizer recipes on the fp32 flatbuffer that litert-torch wrote
(dynamic-range int8, weight-only int8, fp16 weights, full-integer static int8 with int8 logits).

Layers named in `QuantOptions.float_scopes` (torch module names such as `layers.1`) stay in float:
ONNX nodes are matched through the exporter's `pkg.torch.onnx.name_scopes` metadata, TFLite ops
through litert-torch's tensor names (`...EncoderLayer_1/...`).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.profiles import CALIBRATION_METHODS, SUFFIXES
from edgecompress.targets.runtime_util import quiet_fd2
from edgecompress.targets.schemes import Scheme

SCOPES_KEY = "pkg.torch.onnx.name_scopes"  # node metadata written by torch.onnx's dynamo exporter
TFLITE_SIGNATURE = "serving_default"


_METHODS = tuple(dict.fromkeys(m for methods in CALIBRATION_METHODS.values() for m in methods))


@dataclass(frozen=True)
class QuantOptions:
    """What a scheme needs beyond the artifact: calibration inputs and layers kept in float.

    `calibration` holds int64 (input_ids, attention_mask) batches, or float32 pixel_values batches
    of an image model; they are fed one row at a time, text padded to the artifact's fixed
    sequence length when it has one.
    """

    calibration: tuple[dict, ...] = ()
    method: str = "minmax"  # "minmax" | "entropy" | "percentile" (ONNX); TFLite: "minmax";
    # OpenVINO: "mean-minmax" (NNCF's own ranges)
    float_scopes: tuple[str, ...] = ()
    module: object = field(default=None, compare=False, repr=False)  # for TFLite scope names
    # Calibration ranges saved here on first use and reused: the fallback loop quantizes the same
    # fp32 file many times with the same samples, and calibration is the slow part.
    calibration_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method: expected one of {', '.join(_METHODS)}, "
                             f"got {self.method!r}")


# (format, scheme kind) -> function(src, dst, scheme, options, fixed_shape) -> info dict.
_QUANTIZERS: dict[tuple[str, str], Callable[..., dict]] = {}


def _quantizer(fmt: str, *kinds: str):
    def register(fn):
        for kind in kinds:
            _QUANTIZERS[fmt, kind] = fn
        return fn
    return register


def quantize_artifact(src: Path, dst: Path, scheme: Scheme, options: QuantOptions,
                      fixed_shape: tuple[int, int] | None = None) -> dict:
    """Write the `scheme` version of the fp32 artifact `src` to `dst` (same suffix).

    Returns plain-JSON facts for the manifest (method, samples, layers kept in float). Raises
    ValueError for a scheme this format has no quantizer for, UserError for a static scheme
    without calibration samples.
    """
    fmt = next((f for f, suffix in SUFFIXES.items() if suffix == Path(src).suffix),
               Path(src).suffix)
    if (fmt, scheme.kind) not in _QUANTIZERS:
        known = sorted(k for f, k in _QUANTIZERS if f == fmt)
        raise ValueError(f"no {fmt} quantizer for {scheme.kind!r} (known: {', '.join(known)})")
    if scheme.calibrated and not options.calibration:
        raise UserError(f"scheme {scheme.name} needs calibration samples: use `edgecompress "
                        f"quantize MODEL --target ... --dataset ...`")
    with _quiet_logs():
        info = _QUANTIZERS[fmt, scheme.kind](Path(src), Path(dst), scheme, options, fixed_shape)
    return {"scheme": scheme.name, "kind": scheme.kind, "per_channel": scheme.per_channel,
            "float_scopes": list(options.float_scopes), **info}


def calibration_rows(options: QuantOptions, fixed_shape, dtype=np.int64):
    """Yield one-row feeds {input_ids, attention_mask} (1, S), padded to `fixed_shape` if any;
    or {pixel_values} (1, C, H, W) float32 for an image model (`dtype` is for token ids)."""
    for batch in options.calibration:
        if "pixel_values" in batch:
            pixels = np.asarray(batch["pixel_values"], dtype=np.float32)
            yield from ({"pixel_values": pixels[row:row + 1]} for row in range(len(pixels)))
            continue
        ids, mask = np.asarray(batch["input_ids"]), np.asarray(batch["attention_mask"])
        if fixed_shape is not None:
            pad = ((0, 0), (0, fixed_shape[1] - ids.shape[1]))
            ids, mask = np.pad(ids, pad), np.pad(mask, pad)
        for row in range(len(ids)):
            yield {"input_ids": ids[row:row + 1].astype(dtype),
                   "attention_mask": mask[row:row + 1].astype(dtype)}


# --- OpenVINO -----------------------------------------------------------------------------------

@_quantizer("openvino", "static")
def _openvino_nncf(src, dst, scheme, options, fixed_shape) -> dict:
    """NNCF post-training int8 (targets/openvino_backend.py) on the calibration rows."""
    from edgecompress.targets.openvino_backend import quantize_nncf

    rows = list(calibration_rows(options, fixed_shape))
    return {"method": options.method, **quantize_nncf(src, dst, rows, options.float_scopes)}


# --- ONNX ---------------------------------------------------------------------------------------

def onnx_scope_nodes(model, scopes: tuple[str, ...]) -> list[str]:
    """Names of the nodes the exporter recorded under any torch module in `scopes`."""
    wanted, names = set(scopes), []
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        if SCOPES_KEY in meta and wanted & set(ast.literal_eval(meta[SCOPES_KEY])):
            names.append(node.name)
    return names


def onnx_scope_output(model, scope: str) -> str | None:
    """The tensor the last node of torch module `scope` writes: the layer's output."""
    nodes = set(onnx_scope_nodes(model, (scope,)))
    last = [n for n in model.graph.node if n.name in nodes]
    return last[-1].output[0] if last else None


def _excluded(src: Path, options: QuantOptions) -> list[str]:
    if not options.float_scopes:
        return []
    import onnx

    return onnx_scope_nodes(onnx.load(str(src), load_external_data=False), options.float_scopes)


# Rows the dynamic ONNX quantizer measures both weight ranges on (real sentences when given).
MEASURE_ROWS = 32


@_quantizer("onnx", "dynamic")
def _onnx_dynamic(src, dst, scheme, options, fixed_shape) -> dict:
    """Dynamic int8, with `reduce_range` chosen by measurement on this host.

    onnxruntime's u8s8 kernels without VNNI (AVX2's vpmaddubsw) can saturate with full-range
    int8 weights, which 7-bit weights (`reduce_range`) avoid; on VNNI / AMX the full range is more
    precise. Which one this CPU needs is measured, not assumed: both are built and run on up to
    MEASURE_ROWS calibration rows against the fp32 artifact, and the one with the lower relative
    error is kept (full range on a tie). Without rows the full range is kept, and said so.
    """
    excluded = _excluded(src, options)
    rows = [row for row, _ in zip(calibration_rows(options, fixed_shape), range(MEASURE_ROWS))]
    info = {"tool": "onnxruntime.quantization.quantize_dynamic", "float_nodes": len(excluded)}
    if not rows:
        _quantize_dynamic(src, dst, scheme, excluded, reduce_range=False)
        return {**info, "reduce_range": False,
                "reduce_range_chosen_by": "default: no rows to measure on"}
    reference = _onnx_outputs(src, rows)
    errors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for reduce_range in (False, True):
            path = Path(tmp) / f"reduce-range-{reduce_range}.onnx"
            _quantize_dynamic(src, path, scheme, excluded, reduce_range=reduce_range)
            errors[reduce_range] = relative_error(_onnx_outputs(path, rows), reference)
        chosen = errors[True] < errors[False]
        os.replace(Path(tmp) / f"reduce-range-{chosen}.onnx", dst)
    return {**info, "reduce_range": chosen,
            "reduce_range_chosen_by": f"measured on {len(rows)} rows on this host",
            "reduce_range_rel_error": {"false": errors[False], "true": errors[True]}}


def _quantize_dynamic(src, dst, scheme, excluded, *, reduce_range: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp, _quiet_logs():
        if scheme.embedding_bits == 4:  # the Gathers become GatherBlockQuantized first
            src = _int4_embeddings(src, Path(tmp) / "int4-embeddings.onnx")
        quantize_dynamic(str(src), str(dst), per_channel=scheme.per_channel,
                         reduce_range=reduce_range, weight_type=QuantType.QInt8,
                         nodes_to_exclude=excluded)


EMBEDDING_BLOCK = 32  # int4 weights share one float32 scale per 32 values of a row: 5 bits a weight


def _int4_embeddings(src: Path, dst: Path) -> Path:
    """Embedding tables (constant-data Gathers) to symmetric blockwise int4 along the hidden
    axis, with onnxruntime's MatMulNBitsQuantizer; returns `dst`."""
    import onnx

    level = logging.getLogger().level  # the module's import sets the root logger to INFO
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )
    logging.getLogger().setLevel(level)

    config = DefaultWeightOnlyQuantConfig(block_size=EMBEDDING_BLOCK, is_symmetric=True,
                                          op_types_to_quantize=("Gather",), bits=4)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    return dst


def _onnx_outputs(path: Path, rows: list[dict]) -> np.ndarray:
    """The output of the ONNX model at `path` on every row, stacked."""
    from edgecompress.targets.runtimes import load_runner

    runner = load_runner(path)
    return np.concatenate([runner.run(**row) for row in rows])


def relative_error(out: np.ndarray, reference: np.ndarray) -> float:
    """||out - reference|| / ||reference|| (the parity gate's relative L2 error); inf for NaN."""
    error = out.astype(np.float64) - reference
    rel = float(np.linalg.norm(error) / max(float(np.linalg.norm(reference)), 1e-12))
    return float("inf") if np.isnan(rel) else rel


class _Reader:
    """onnxruntime CalibrationDataReader over real tokenized rows (a fresh pass per rewind)."""

    def __init__(self, options: QuantOptions, fixed_shape):
        self.options, self.fixed_shape = options, fixed_shape
        self.rewind()

    def get_next(self):
        return next(self._rows, None)

    def rewind(self):
        self._rows = calibration_rows(self.options, self.fixed_shape)

    def __len__(self):
        return sum(len(next(iter(b.values()))) for b in self.options.calibration)


@_quantizer("onnx", "static")
def _onnx_static(src, dst, scheme, options, fixed_shape) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[options.method]
    excluded = _excluded(src, options)
    reader = _Reader(options, fixed_shape)
    # QInt8 weights (symmetric), QInt8 or QInt16 activations, QDQ: what NPU execution providers
    # take (int16 Q/DQ is standard ONNX from opset 21; onnxruntime raises the opset itself).
    # The bounded -100 mask keeps the additive-mask range small enough to survive calibration.
    activations = QuantType.QInt16 if scheme.activation_bits == 16 else QuantType.QInt8
    extra = {"CalibPercentile": 99.999}
    if scheme.activation_bits == 16:  # a Gather's table is quantized like an activation:
        # keep the embedding tables int8 weights (16 bits would double the largest tensor)
        extra["TensorQuantOverrides"] = {name: [{"quant_type": QuantType.QInt8}]
                                         for name in _gather_tables(src)}
    quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=_static_op_types(),
                    per_channel=scheme.per_channel, activation_type=activations,
                    weight_type=QuantType.QInt8, calibrate_method=method,
                    nodes_to_exclude=excluded, calibration_cache_path=options.calibration_cache,
                    # No CalibMaxIntermediateOutputs: onnxruntime 1.32's MinMax calibrater drops
                    # (does not merge) the outputs it flushes, so only the last N mod k rows
                    # would count, and none ("No data is collected") when N is a multiple of k.
                    extra_options=extra)
    return {"tool": "onnxruntime.quantization.quantize_static (QDQ)", "method": options.method,
            "calibration_rows": len(reader), "float_nodes": len(excluded),
            "activation_bits": scheme.activation_bits}


# onnxruntime's own op list leaves GELU's Div and Erf and the mask's table lookup (GatherND) in
# float, so an "integer-only" NPU graph still had 8 float ops (preflight); wrapped in Q/DQ they
# cost the demo student nothing (relative error 0.1642 -> 0.1642 with int8 activations).
_ALSO_QUANTIZED = ("Div", "Erf", "GatherND")


def _static_op_types() -> list[str]:
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted({*QDQRegistry, *QLinearOpsRegistry, *_ALSO_QUANTIZED})


def _gather_tables(src: Path) -> list[str]:
    """Names of the constant tables that Gathers read: the embeddings."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    constants = {i.name for i in model.graph.initializer}
    return sorted({n.input[0] for n in model.graph.node
                   if n.op_type == "Gather" and n.input[0] in constants})


@_quantizer("onnx", "fp16")
def _onnx_fp16(src, dst, scheme, options, fixed_shape) -> dict:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    blocked = onnx_scope_nodes(model, options.float_scopes) if options.float_scopes else None
    # keep_io_types: int64 ids in, fp32 logits out, as every other artifact of the target.
    model = convert_float_to_float16(model, keep_io_types=True, node_block_list=blocked)
    onnx.save(model, str(dst))
    return {"tool": "onnxruntime.transformers.float16", "float_nodes": len(blocked or ())}


# --- TFLite -------------------------------------------------------------------------------------

def tflite_scope_regex(module, scope: str) -> str:
    """Regex for litert-torch tensor names inside torch submodule `scope` of `module`.

    litert-torch names tensors by the module path, one `<qualified class>_<attribute>` per level
    (`.../transformers...BertLayer_1/...`); the last level with the class name is unique enough.
    """
    sub = module.get_submodule(scope)
    last = scope.rsplit(".", 1)[-1]
    return r"(^|[./])" + re.escape(f"{type(sub).__name__}_{last}") + r"(/|;|$)"


def _aeq_recipe(scheme: Scheme, float_regexes: list[str]):
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe_manager

    ops, rm = qtyping.TFLOperationName.ALL_SUPPORTED, recipe_manager.RecipeManager()
    if scheme.kind == "dynamic":
        rm.add_dynamic_config(".*", ops, 8, qtyping.QuantGranularity.CHANNELWISE)
    elif scheme.kind == "weight-only":
        rm.add_weight_only_config(".*", ops, 8, qtyping.QuantGranularity.CHANNELWISE)
    elif scheme.kind == "static":
        rm.add_static_config(".*", ops, activation_num_bits=8, weight_num_bits=8)
    else:  # fp16: weights cast to float16, dequantized for float compute
        config = qtyping.OpQuantizationConfig(
            weight_tensor_config=qtyping.TensorQuantizationConfig(
                num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
            compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True)
        rm.add_quantization_config(".*", ops, config, algorithm_manager.AlgorithmName.FLOAT_CASTING)
    for regex in float_regexes:  # later entries win: these scopes stay float
        rm.add_quantization_config(regex, ops, None, algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return rm.get_quantization_recipe()


@_quantizer("tflite", "dynamic", "weight-only", "static", "fp16")
def _tflite_aeq(src, dst, scheme, options, fixed_shape) -> dict:
    from ai_edge_quantizer import quantizer

    if options.float_scopes and options.module is None:
        raise ValueError("float_scopes on TFLite need QuantOptions.module (for tensor names)")
    regexes = [tflite_scope_regex(options.module, s) for s in options.float_scopes]
    quant = quantizer.Quantizer(str(src), _aeq_recipe(scheme, regexes))
    calibration, rows = None, 0
    if scheme.calibrated:
        calibration, rows = _aeq_calibration(src, scheme, options, fixed_shape)
    with quiet_fd2():  # ai-edge-quantizer's tqdm bars (fd 2), its warnings
        result = quant.quantize(calibration, enable_progress_report=False)
    Path(dst).write_bytes(result.quantized_model)
    return {"tool": "ai-edge-quantizer", "method": options.method if scheme.calibrated else None,
            "calibration_rows": rows, "float_regexes": regexes}


def _aeq_calibration(src: Path, scheme: Scheme, options: QuantOptions, fixed_shape):
    """(tensor ranges, rows) from the full static recipe, for every fallback variant to reuse."""
    from ai_edge_quantizer import quantizer

    cache = None if options.calibration_cache is None else str(options.calibration_cache)
    if cache in _CALIBRATION_CACHE:
        return _CALIBRATION_CACHE[cache]
    samples = list(calibration_rows(options, fixed_shape, dtype=np.int32))
    full = quantizer.Quantizer(str(src), _aeq_recipe(scheme, []))
    with quiet_fd2():  # ai-edge-quantizer's tqdm bars (fd 2), its warnings
        ranges = full.calibrate({TFLITE_SIGNATURE: samples}, num_threads=1)
    if cache is not None:
        _CALIBRATION_CACHE[cache] = (ranges, len(samples))
    return ranges, len(samples)


# Calibration ranges by cache key, kept in memory (never pickled to disk): the fallback loop
# re-quantizes the same model with different float layers in this one process.
_CALIBRATION_CACHE: dict[str, tuple] = {}


@contextlib.contextmanager
def _quiet_logs():
    """onnxruntime.quantization logs advice on the root logger at WARNING; keep the CLI clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
