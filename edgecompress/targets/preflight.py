"""Preflight: which ops of an artifact an integer-only target (NPU, Edge TPU) cannot run.

An int8-only device runs an op only when everything it reads and writes is integer; any float op
splits the graph and hands the rest back to the host CPU, silently. Preflight lists those ops
before anyone deploys.

TFLite: an op is float when any tensor it reads or writes is float32/float16 (a QUANTIZE that
takes float in counts: it is the float boundary). ONNX (QDQ): an op other than QuantizeLinear /
DequantizeLinear is float when a float input does not come from a DequantizeLinear (or an
initializer feeding one), or a float output feeds anything but a QuantizeLinear.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.errors import ParityError, UserError
from edgecompress.targets.inputs import sample_inputs

_FLOAT_TFLITE = (np.float32, np.float16, np.float64)
_ONNX_FLOAT = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
_QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class PreflightReport:
    """Float ops found in an artifact: [{op, count, example}] with `example` a tensor or node."""

    artifact: str
    format: str
    ops_total: int
    float_ops: tuple[dict, ...]

    @property
    def float_count(self) -> int:
        return sum(entry["count"] for entry in self.float_ops)

    @property
    def integer_only(self) -> bool:
        return not self.float_ops

    def to_json(self) -> dict:
        return {"artifact": self.artifact, "format": self.format, "ops_total": self.ops_total,
                "float_op_count": self.float_count, "integer_only": self.integer_only,
                "float_ops": list(self.float_ops)}


def preflight(path: Path) -> PreflightReport:
    """Scan the artifact at `path` (.onnx or .tflite) for ops that are not integer-only.

    Returns the PreflightReport. Raises UserError for a missing file or another suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"artifact not found: {path}")
    if path.suffix == ".tflite":
        total, found = _tflite_float_ops(path)
    elif path.suffix == ".onnx":
        total, found = _onnx_float_ops(path)
    else:
        raise UserError(f"{path}: preflight reads .onnx or .tflite artifacts")
    counts = Counter(op for op, _ in found)
    examples = {}
    for op, example in found:
        examples.setdefault(op, example)
    entries = tuple({"op": op, "count": n, "example": examples[op]}
                    for op, n in counts.most_common())
    return PreflightReport(str(path), path.suffix.lstrip("."), total, entries)


def _tflite_float_ops(path: Path) -> tuple[int, list[tuple[str, str]]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    found = []
    for op in ops:
        tensors = [i for i in [*op["inputs"], *op["outputs"]] if i >= 0 and i in details]
        floats = [details[i] for i in tensors if details[i]["dtype"] in _FLOAT_TFLITE]
        if floats:
            found.append((op["op_name"], _short(floats[0]["name"])))
    return len(ops), found


def _onnx_float_ops(path: Path) -> tuple[int, list[tuple[str, str]]]:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    dtypes = {v.name: v.type.tensor_type.elem_type
              for v in [*graph.input, *graph.output, *graph.value_info]}
    dtypes.update({t.name: t.data_type for t in graph.initializer})
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for node in graph.node:
        if node.op_type in _QDQ:
            continue
        float_in = [i for i in node.input if i and dtypes.get(i) in _ONNX_FLOAT]
        float_out = [o for o in node.output if dtypes.get(o) in _ONNX_FLOAT]
        bad_in = [i for i in float_in
                  if getattr(producer.get(i), "op_type", None) != "DequantizeLinear"]
        bad_out = [o for o in float_out
                   if any(c.op_type != "QuantizeLinear" for c in consumers.get(o, []))
                   or o in {v.name for v in graph.output}]
        if bad_in or bad_out:
            found.append((node.op_type, node.name))
    return len(graph.node), found


def _short(name: str, keep: int = 120) -> str:
    """litert-torch tensor names hold the whole module path; keep the informative tail."""
    return name if len(name) <= keep else "…" + name[-keep:]


# ---------------------------------------------------------------- before converting

# A fill this large (float-min, -inf) in the traced graph is an op an integer-only target cannot
# run: full-integer calibration gives its output a scale that swamps every real value (docs/design:
# the attention-mask collapse). The op each format lowers it to is what preflight names.
_FLOAT_MIN_FILL = 1e30
_LOWERED = {"tflite": {"aten.masked_fill": "SELECT_V2", "aten.where": "SELECT_V2"},
            "onnx": {"aten.masked_fill": "Where", "aten.where": "Where"}}


class PreflightError(ParityError):
    """An integer-only target cannot run an op of the model; found before converting.

    A ParityError, so a run refuses this target (artifacts/<target>/refused.json) and goes on
    with the others, as it does for an artifact that misses its gate."""

    def __init__(self, message: str):
        ValueError.__init__(self, message)
        self.artifact, self.diffs, self.tolerance = "", {}, 0.0


class UntracedError(Exception):
    """`torch.export` could not trace the module, so the graph was not checked before converting."""


def float_min_fills(module, sample: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """(aten op, module path) of every op in `module`'s traced graph that writes a float-min or
    infinite constant. Raises UntracedError (with torch's reason, one line) when the module does
    not trace: "nothing found" and "not looked" are different answers."""
    import torch

    args = tuple(torch.from_numpy(np.ascontiguousarray(sample[k][:1])) for k in
                 sample_inputs(sample))
    try:
        graph = torch.export.export(module, args).graph
    except Exception as err:  # noqa: BLE001 — any tracing failure; its reason travels on
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise UntracedError(f"torch.export could not trace the model ({reason})") from None
    found = []
    for node in graph.nodes:
        values = [a for a in (*node.args, *node.kwargs.values())
                  if isinstance(a, float) and abs(a) >= _FLOAT_MIN_FILL]
        if node.op == "call_function" and values:
            scope = list(node.meta.get("nn_module_stack", {}).values())
            where = f"{scope[-1][0]} ({scope[-1][1].rsplit('.', 1)[-1]})" if scope else "?"
            found.append((str(node.target).rsplit(".", 1)[0], where))
    return found


def check_integer_graph(module, sample: dict[str, np.ndarray], profile) -> str | None:
    """Raise PreflightError, in one line naming the op and the target, when `module` holds an op
    that `profile` (an integer-only target) cannot run. Returns None when the graph was checked
    (or the target is not integer-only), else why it could not be checked before converting
    (the artifact's own preflight after converting still runs)."""
    if not profile.integer_only:
        return None
    try:
        found = float_min_fills(module, sample)
    except UntracedError as err:
        return str(err)
    if not found:
        return None
    aten, where = found[0]
    lowered = _LOWERED.get(profile.format, {}).get(aten, aten)
    config = getattr(getattr(module, "hf", None), "config", None)
    model = getattr(config, "model_type", type(module).__name__)
    raise PreflightError(
        f"{profile.name} preflight: {model} cannot run integer-only: {lowered} ({aten} writing "
        f"float-min in {where}, {len(found)} such op(s)); full-integer calibration cannot scale "
        f"a float-min fill — refused before converting")
