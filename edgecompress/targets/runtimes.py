"""Run a model on its inputs the same way whatever it is: torch, ONNX Runtime, LiteRT,
ExecuTorch or OpenVINO.

Eval and bench only see `Runner.run(*inputs) -> (B, C) float32`, the inputs in the model's order:
`(input_ids, attention_mask)` int (B, S) for text, `(pixel_values,)` float32 (B, C, H, W) for
images (targets/inputs.py); they may also be passed by name. Fixed-shape artifacts (every TFLite
file, since litert-torch converts static shapes only) take any batch and, for text, any sequence
up to their fixed length: the runner pads and chunks, and returns the real rows. A text TFLite
file may carry one signature per sequence length (`[shape] buckets`): each chunk runs on the
shortest signature that holds its unmasked tokens, so short sentences do not pay for 128.
Bounded artifacts (ExecuTorch .pte: a fixed number of rows, any length up to a bound) are chunked
by rows and not padded.

Heavy imports (torch, onnxruntime, ai_edge_litert, executorch, openvino) happen inside the
functions that need them, so the bench child process pays only for the runtime it measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.executorch_backend import ExecuTorchBackend
from edgecompress.targets.inputs import IMAGE_INPUTS, PAD_ID, TEXT_INPUTS, is_image, module_inputs
from edgecompress.targets.openvino_backend import OpenVINOBackend
from edgecompress.targets.runtime_util import artifact_files, package_version

INPUT_NAMES = TEXT_INPUTS  # the text inputs, the default of every module


class Runner(Protocol):
    name: str  # "torch" | "onnxruntime" | "litert" | "executorch" | "openvino"
    version: str  # the runtime's version, for reports
    input_names: tuple[str, ...]  # TEXT_INPUTS or IMAGE_INPUTS
    fixed_shape: tuple[int, ...] | None  # the first input's shape if fixed; None if dynamic
    bounded_shape: tuple[int, int] | None  # (batch exactly, seq at most); None if not bounded
    buckets: tuple[int, ...]  # fixed text shapes: the sequence lengths it has signatures for

    def run(self, *arrays: np.ndarray, **named: np.ndarray) -> np.ndarray:
        """Outputs (B, C) float32; any B, and (text) S <= the fixed seq."""
        ...


class _Backend(Protocol):
    """One runtime: `feed` casts exact-shape inputs, `invoke` runs them (the timed part).
    `shapes` maps each input name to (dtype, shape), None for a dynamic axis."""

    name: str
    version: str
    input_names: tuple[str, ...]
    fixed_shape: tuple[int, ...] | None
    shapes: dict

    def feed(self, inputs: dict[str, np.ndarray]) -> Any: ...

    def invoke(self, feed: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class BackendRunner:
    """A Runner over one backend: validates, pads and chunks for fixed shapes, concatenates."""

    backend: _Backend

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def version(self) -> str:
        return self.backend.version

    @property
    def fixed_shape(self) -> tuple[int, ...] | None:
        return self.backend.fixed_shape

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.backend.input_names

    @property
    def bounded_shape(self) -> tuple[int, int] | None:
        return getattr(self.backend, "bounded_shape", None)

    @property
    def buckets(self) -> tuple[int, ...]:
        """Fixed text shapes: the sequence lengths with a signature (ascending); else ()."""
        if self.fixed_shape is None or is_image(self.input_names):
            return ()
        return getattr(self.backend, "buckets", None) or (self.fixed_shape[1],)

    def run(self, *arrays, **named) -> np.ndarray:
        """Outputs (B, C) float32. Raises UserError for inputs the artifact cannot take."""
        inputs = self._named(arrays, named)
        if is_image(self.input_names):
            return self._run_images(inputs["pixel_values"])
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise UserError(f"inputs must be two (batch, seq) arrays of one shape, got "
                            f"{input_ids.shape} and {attention_mask.shape}")
        shape = self.fixed_shape or self.bounded_shape
        if shape is None:
            return self._call({"input_ids": input_ids, "attention_mask": attention_mask})
        fixed_batch, fixed_seq = shape
        seq = input_ids.shape[1]
        if seq > fixed_seq:
            raise UserError(f"this {self.name} artifact takes sequences of at most {fixed_seq} "
                            f"tokens, got {seq}")
        # Pad the sequence with pad id 0 and mask 0: padded keys are masked, outputs unchanged.
        # A bounded artifact takes the length as it is.
        width = fixed_seq if self.fixed_shape else seq
        ids = np.pad(input_ids, ((0, 0), (0, width - seq)), constant_values=PAD_ID)
        mask = np.pad(attention_mask, ((0, 0), (0, width - seq)), constant_values=0)
        return self._chunked({"input_ids": ids, "attention_mask": mask}, fixed_batch)

    def _named(self, arrays, named) -> dict[str, np.ndarray]:
        names = self.input_names
        if arrays and named:
            raise TypeError("pass the inputs by position or by name, not both")
        if arrays:
            if len(arrays) != len(names):
                raise UserError(f"this {self.name} model takes {len(names)} input(s) "
                                f"({', '.join(names)}), got {len(arrays)}")
            return {n: np.asarray(a) for n, a in zip(names, arrays)}
        missing = [n for n in names if n not in named]
        if missing:
            raise UserError(f"this {self.name} model takes {', '.join(names)}; missing "
                            f"{', '.join(missing)} (got {', '.join(named) or 'nothing'})")
        return {n: np.asarray(named[n]) for n in names}

    def _run_images(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 4:
            raise UserError(f"pixel_values must be (batch, channels, height, width), got "
                            f"{pixels.shape}")
        if self.fixed_shape is None:
            return self._call({"pixel_values": pixels})
        if tuple(pixels.shape[1:]) != tuple(self.fixed_shape[1:]):
            raise UserError(f"this {self.name} artifact takes images of shape "
                            f"{tuple(self.fixed_shape[1:])}, got {tuple(pixels.shape[1:])}")
        return self._chunked({"pixel_values": pixels}, self.fixed_shape[0])

    def _chunked(self, inputs: dict[str, np.ndarray], fixed_batch: int) -> np.ndarray:
        """Run fixed-batch chunks; the last is filled by repeating its last real row (an
        all-masked filler row can give NaN, softmax over only -inf) and the fill is dropped."""
        rows = len(next(iter(inputs.values())))
        outputs = []
        for start in range(0, rows, fixed_batch):
            chunk = {n: a[start:start + fixed_batch] for n, a in inputs.items()}
            real = len(next(iter(chunk.values())))
            if real < fixed_batch:
                fill = fixed_batch - real
                chunk = {n: np.concatenate([a, np.repeat(a[-1:], fill, 0)])
                         for n, a in chunk.items()}
            if self.buckets and "attention_mask" in chunk:  # the shortest signature that holds
                width = bucket_for(chunk["attention_mask"], self.buckets)
                chunk = {n: a[:, :width] for n, a in chunk.items()}
            outputs.append(self._call(chunk)[:real])
        return np.concatenate(outputs)

    def _call(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        out = self.backend.invoke(self.backend.feed(inputs))
        return np.asarray(out, dtype=np.float32)


def bucket_for(mask: np.ndarray, buckets: tuple[int, ...]) -> int:
    """The shortest of `buckets` (ascending) holding every unmasked column of `mask` (B, S)."""
    columns = np.flatnonzero(np.asarray(mask).any(axis=0))
    needed = int(columns[-1]) + 1 if columns.size else 1
    return next((b for b in buckets if b >= needed), buckets[-1])


def _cast(name: str, array: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32 if name == "pixel_values" else dtype)


class _TorchBackend:
    name, fixed_shape = "torch", None

    def __init__(self, module):
        import torch

        self.module, self.version, self._torch = module, torch.__version__, torch
        self.input_names = module_inputs(module)
        self.shapes = {}

    def feed(self, inputs):
        torch = self._torch
        return tuple(torch.from_numpy(_cast(n, inputs[n], np.int64)) for n in self.input_names)

    def invoke(self, feed):
        with self._torch.inference_mode():
            return self.module(*feed).float().numpy()


def torch_runner(module) -> Runner:
    """A Runner over a torch module `forward(*inputs) -> (B, C)` (eval mode); its inputs are
    `module.input_names` (default: input_ids, attention_mask)."""
    return BackendRunner(_TorchBackend(module.eval()))


_ORT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}


def _known_names(found, path: Path) -> tuple[str, ...]:
    """Our input names when the model uses them, else the text inputs by position."""
    for names in (IMAGE_INPUTS, TEXT_INPUTS):
        if set(names) <= set(found) and len(found) == len(names):
            return names
    if len(found) != 2:
        raise UserError(f"{path}: expected 2 inputs (input_ids, attention_mask) or 1 "
                        f"(pixel_values), got {len(found)}")
    return TEXT_INPUTS


class _OrtBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one graph at a time; threads go to the ops
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.version = ort.__version__
        inputs = self.session.get_inputs()
        self.input_names = _known_names([i.name for i in inputs], path)
        # Map by name when the model uses ours, else by position. [(name, numpy dtype)]
        by_name = {i.name: i for i in inputs}
        ordered = ([by_name[n] for n in self.input_names]
                   if set(self.input_names) <= set(by_name) else inputs)
        self._inputs = [(i.name, _ORT_DTYPES.get(i.type, np.int64)) for i in ordered]
        self.shapes = {ours: (dtype, tuple(d if isinstance(d, int) else None for d in i.shape))
                       for ours, (_, dtype), i in zip(self.input_names, self._inputs, ordered)}
        shape = ordered[0].shape
        self.fixed_shape = tuple(shape) if all(isinstance(d, int) for d in shape) else None

    def feed(self, inputs):
        arrays = [inputs[n] for n in self.input_names]
        return {name: np.ascontiguousarray(a, dtype=dtype)
                for (name, dtype), a in zip(self._inputs, arrays)}

    def invoke(self, feed):
        return self.session.run(None, feed)[0]


class _LiteRtBackend:
    """Every signature of the file by sequence length (text files may carry one per length
    bucket); the attributes describe the longest. `seq` keeps only the signature of that length
    (the parity gate checks each in turn)."""

    name = "litert"

    def __init__(self, path: Path, threads: int, seq: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.version = package_version("ai-edge-litert")
        signatures = [_LiteRtSignature(self.interpreter.get_signature_runner(key), path)
                      for key in self.interpreter.get_signature_list()]
        if len(signatures) > 1 and any(s.width is None for s in signatures):
            raise UserError(f"{path}: several signatures, not all of them text inputs")
        by_width = {s.width: s for s in signatures}
        if len(by_width) != len(signatures):
            raise UserError(f"{path}: two signatures take inputs of one length")
        if seq is not None:
            if seq not in by_width:
                raise UserError(f"{path}: no signature takes {seq} tokens (it has "
                                f"{', '.join(str(w) for w in sorted(by_width, key=str))})")
            by_width = {seq: by_width[seq]}
        self._signatures = dict(sorted(by_width.items(), key=lambda item: item[0] or 0))
        longest = list(self._signatures.values())[-1]
        if len({s.fixed_shape[0] for s in self._signatures.values()}) != 1:
            raise UserError(f"{path}: signatures disagree on the batch size")
        self.input_names, self.shapes = longest.input_names, longest.shapes
        self.fixed_shape = longest.fixed_shape
        self.buckets = tuple(w for w in self._signatures if w is not None)

    def feed(self, inputs):
        width = inputs["input_ids"].shape[1] if "input_ids" in inputs else None
        signature = self._signatures.get(width) if len(self._signatures) > 1 else \
            next(iter(self._signatures.values()))
        if signature is None:
            raise UserError(f"no signature takes {width} tokens "
                            f"(this artifact has {', '.join(map(str, self.buckets))})")
        return signature, signature.feed(inputs)

    def invoke(self, feed):
        signature, arrays = feed
        return signature.invoke(arrays)


class _LiteRtSignature:
    """One signature runner: its inputs in our order, their fixed shapes, the output's and the
    inputs' quantization. `width`: the sequence length of a text signature (None: images)."""

    def __init__(self, runner, path: Path):
        self.runner = runner
        details = runner.get_input_details()  # {signature input name: details}
        self.input_names = _known_names(list(details), path)
        # litert-torch names inputs after forward's kwargs (and sorts them); files converted from
        # positional args have args_0, args_1 in forward order.
        names = (list(self.input_names) if set(self.input_names) <= set(details)
                 else sorted(details))
        self._inputs = [(n, details[n]["dtype"]) for n in names]
        self.shapes = {ours: (details[n]["dtype"], tuple(int(d) for d in details[n]["shape"]))
                       for ours, n in zip(self.input_names, names)}
        self.fixed_shape = tuple(int(d) for d in details[names[0]]["shape"])
        self.width = None if is_image(self.input_names) else self.fixed_shape[1]
        outputs = runner.get_output_details()
        self._output_name = next(iter(outputs))
        self._scale, self._zero = outputs[self._output_name]["quantization"]  # (0.0, 0): float
        self._input_quant = {n: details[n]["quantization"] for n in names}

    def feed(self, inputs):
        arrays = [inputs[n] for n in self.input_names]
        return {name: self._quantize_input(name, np.asarray(a), dtype)
                for (name, dtype), a in zip(self._inputs, arrays)}

    def _quantize_input(self, name: str, array: np.ndarray, dtype) -> np.ndarray:
        """int8 pixel inputs of a full-integer model take the quantized image."""
        scale, zero = self._input_quant[name]
        if scale and np.issubdtype(array.dtype, np.floating):
            info = np.iinfo(dtype)
            array = np.clip(np.round(array / scale + zero), info.min, info.max)
        return np.ascontiguousarray(array, dtype=dtype)

    def invoke(self, feed):
        out = self.runner(**feed)[self._output_name]
        if self._scale:  # int8/uint8 outputs of a quantized model
            return (out.astype(np.float32) - self._zero) * self._scale
        return out


_BACKENDS = {".onnx": (_OrtBackend, "ONNX"), ".tflite": (_LiteRtBackend, "TFLite"),
             ".pte": (ExecuTorchBackend, "ExecuTorch"), ".xml": (OpenVINOBackend, "OpenVINO IR")}


def load_runner(path: Path, threads: int = 1, *, seq: int | None = None) -> Runner:
    """A Runner for an exported artifact, chosen by suffix (.onnx, .tflite, .pte or .xml, an
    OpenVINO IR with its .bin beside it).

    `seq`: of a TFLite file with one signature per length bucket, use only the one of `seq`
    tokens. Raises UserError if the file is missing, has another suffix, is not a valid model,
    has no signature of `seq` tokens, or needs a runtime that is not installed (ExecuTorch,
    OpenVINO: optional extras).
    """
    path = Path(path)
    if path.suffix not in _BACKENDS:
        raise UserError(f"{path}: unknown artifact type {path.suffix!r} "
                        f"(expected one of: {', '.join(_BACKENDS)})")
    missing = [p for p in artifact_files(path) if not p.is_file()]
    if missing:
        raise UserError(f"artifact not found: {missing[0]}")
    backend, kind = _BACKENDS[path.suffix]
    try:
        return BackendRunner(backend(path, threads) if seq is None
                             else backend(path, threads, seq=seq))
    except UserError:
        raise
    except OSError as err:  # unreadable (permissions, I/O): not a statement about the model
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    except Exception as err:
        if not isinstance(err, _bad_file_errors(path.suffix)):
            raise  # a bug of ours or the runtime's, not a bad file: the traceback goes to a log
        message = " ".join(str(err).split())[:300]
        raise UserError(f"{path} is not a valid {kind} model: {message}") from None


def _bad_file_errors(suffix: str) -> tuple[type[BaseException], ...]:
    """The exception types a runtime raises for a file it cannot load as a model. ONNX Runtime's
    derive from Exception directly (InvalidProtobuf, InvalidGraph, ...); LiteRT raises
    ValueError; ExecuTorch and OpenVINO RuntimeError."""
    if suffix == ".onnx":
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        return (state.Fail, state.InvalidArgument, state.InvalidProtobuf, state.InvalidGraph,
                state.NoSuchFile, state.NotImplemented, state.RuntimeException, ValueError,
                RuntimeError)
    return (ValueError, RuntimeError)
