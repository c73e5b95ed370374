"""Read intermediate tensors out of an artifact: one layer output per torch module scope.

Used by the quantization blame report: the same scope's output from torch and from the
(quantized) artifact, on the same inputs, says where the error comes from. ONNX taps the output
of the last node the exporter recorded under the scope (exposed as an extra graph output);
TFLite taps the last op whose output tensor carries the scope's name (interpreter run with
`experimental_preserve_all_tensors`), dequantizing int8 tensors.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from edgecompress.targets.quantize import onnx_scope_output, tflite_scope_regex


def artifact_taps(path: Path, module, scopes: list[str], rows: list[dict],
                  fp32: Path | None = None) -> dict[str, list]:
    """scope -> list of (1, S, H) float arrays, one per row of `rows` (one-row int feeds).

    Scopes the artifact has no tensor for are left out (all of them for an ExecuTorch .pte or an
    OpenVINO IR).
    `module` is the torch module the artifact was exported from (TFLite scope names need its
    classes); `fp32`, its fp32 ONNX export, names the tapped tensors (quantizers append nodes and
    copy metadata, so the last node of a scope is only reliable in the graph as exported).
    """
    path = Path(path)
    if path.suffix in (".pte", ".xml"):  # XNNPACK-delegated subgraphs keep no intermediate to
        return {}  # read back; an OpenVINO IR's nodes are named by the converter, not our scopes
    if path.suffix == ".onnx":
        return _onnx_taps(path, scopes, rows, fp32)
    return _tflite_taps(path, module, scopes, rows)


_ORT_TYPES = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(float)": np.float32}


def _onnx_taps(path: Path, scopes: list[str], rows: list[dict],
               fp32: Path | None) -> dict[str, list]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    namer = onnx.load(str(fp32), load_external_data=False) if fp32 else model
    names = {s: onnx_scope_output(namer, s) for s in scopes}
    names = {s: n for s, n in names.items() if n}
    existing = {o.name for o in model.graph.output}
    for name in names.values():
        if name not in existing:  # an untyped extra output: ORT infers its type
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    wanted = list(names.values())
    feeds = {i.name: i.type for i in session.get_inputs()}
    out: dict[str, list] = {s: [] for s in names}
    for row in rows:
        feed = {k: np.asarray(v, dtype=_ORT_TYPES.get(feeds[k], np.int64))
                for k, v in row.items() if k in feeds}
        values = session.run(wanted, feed)
        for scope, value in zip(names, values):
            out[scope].append(np.asarray(value, dtype=np.float32))
    return out


def _tflite_taps(path: Path, module, scopes: list[str], rows: list[dict]) -> dict[str, list]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # No XNNPACK: a delegated subgraph keeps no intermediate tensors to read back.
    warnings.filterwarnings("ignore", message=".*preserve_all_tensors.*")
    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=(
                                  OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # execution order
    # The longest signature of a file with one per length bucket (the rows are padded to it)
    longest = max(interpreter.get_signature_list(), key=lambda key: next(iter(
        interpreter.get_signature_runner(key).get_input_details().values()))["shape"][1])
    runner = interpreter.get_signature_runner(longest)
    inputs = runner.get_input_details()
    shape = next(iter(inputs.values()))["shape"]  # (batch, seq), or (batch, C, H, W) for images
    batch, seq = shape[0], (shape[1] if len(shape) == 2 else None)
    patterns = {s: re.compile(tflite_scope_regex(module, s)) for s in scopes}
    index = {}
    for scope, pattern in patterns.items():
        # (batch, seq, hidden) tensors of this scope only: attention scores are (heads, seq, seq),
        # and an op fused across layers carries both names ("...BertLayer_0/...;...BertLayer_1/")
        others = [p for s, p in patterns.items() if s != scope]
        hits = [o for op in ops for o in op["outputs"]
                if o >= 0 and pattern.search(details[o]["name"])
                and not any(p.search(details[o]["name"]) for p in others)
                and details[o]["shape"][0] == batch
                and (seq is None or details[o]["shape"][1] == seq)
                and len(details[o]["shape"]) == 3]
        if hits:
            index[scope] = hits[-1]
    out: dict[str, list] = {s: [] for s in index}
    for row in rows:
        runner(**{k: np.asarray(v, dtype=inputs[k]["dtype"]) for k, v in row.items()})
        for scope, tensor in index.items():
            value = interpreter.get_tensor(tensor)
            scale, zero = details[tensor]["quantization"]
            if scale:  # int8 activation of a full-integer model: back to float
                value = (value.astype(np.float32) - zero) * scale
            out[scope].append(np.asarray(value, dtype=np.float32))
    return out
