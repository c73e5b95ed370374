"""Run a model on tokenized batches the same way whatever it is: torch, ONNX Runtime, LiteRT or
ExecuTorch.

Eval and bench only see `Runner.run(input_ids, attention_mask) -> (B, C) float32`. Fixed-shape
artifacts (every TFLite file, since litert-torch converts static shapes only) take any batch and
any sequence up to their fixed length: the runner pads and chunks, and returns the real rows.
Bounded artifacts (ExecuTorch .pte: a fixed number of rows, any length up to a bound) are chunked
by rows and not padded.

Heavy imports (torch, onnxruntime, ai_edge_litert, executorch) happen inside the functions that
need them, so the bench child process pays only for the runtime it measures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.extras import require

INPUT_NAMES = ("input_ids", "attention_mask")
PAD_ID = 0


class Runner(Protocol):
    name: str  # "torch" | "onnxruntime" | "litert" | "executorch"
    version: str  # the runtime's version, for reports
    fixed_shape: tuple[int, int] | None  # (batch, seq) the artifact requires; None if dynamic
    bounded_shape: tuple[int, int] | None  # (batch exactly, seq at most); None if not bounded

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Outputs (B, C) float32 for int inputs (B, S); any B, and S <= the fixed seq."""
        ...


class _Backend(Protocol):
    """One runtime: `feed` casts exact-shape inputs, `invoke` runs them (the timed part)."""

    name: str
    version: str
    fixed_shape: tuple[int, int] | None

    def feed(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Any: ...

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
    def fixed_shape(self) -> tuple[int, int] | None:
        return self.backend.fixed_shape

    @property
    def bounded_shape(self) -> tuple[int, int] | None:
        return getattr(self.backend, "bounded_shape", None)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Outputs (B, C) float32. Raises UserError for inputs the artifact cannot take."""
        input_ids, attention_mask = np.asarray(input_ids), np.asarray(attention_mask)
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise UserError(f"inputs must be two (batch, seq) arrays of one shape, got "
                            f"{input_ids.shape} and {attention_mask.shape}")
        shape = self.fixed_shape or self.bounded_shape
        if shape is None:
            return self._call(input_ids, attention_mask)
        fixed_batch, fixed_seq = shape
        rows, seq = input_ids.shape
        if seq > fixed_seq:
            raise UserError(f"this {self.name} artifact takes sequences of at most {fixed_seq} "
                            f"tokens, got {seq}")
        # Pad the sequence with pad id 0 and mask 0: padded keys are masked, outputs unchanged.
        # A bounded artifact takes the length as it is.
        width = fixed_seq if self.fixed_shape else seq
        ids = np.pad(input_ids, ((0, 0), (0, width - seq)), constant_values=PAD_ID)
        mask = np.pad(attention_mask, ((0, 0), (0, width - seq)), constant_values=0)
        outputs = []
        for start in range(0, rows, fixed_batch):
            chunk_ids, chunk_mask = ids[start:start + fixed_batch], mask[start:start + fixed_batch]
            real = len(chunk_ids)
            if real < fixed_batch:
                # Fill the last chunk by repeating its last real row: an all-masked filler row can
                # give NaN (softmax over only -inf) and is dropped anyway. (fixed_batch, fixed_seq)
                fill = fixed_batch - real
                chunk_ids = np.concatenate([chunk_ids, np.repeat(chunk_ids[-1:], fill, 0)])
                chunk_mask = np.concatenate([chunk_mask, np.repeat(chunk_mask[-1:], fill, 0)])
            outputs.append(self._call(chunk_ids, chunk_mask)[:real])
        return np.concatenate(outputs)

    def _call(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        out = self.backend.invoke(self.backend.feed(input_ids, attention_mask))
        return np.asarray(out, dtype=np.float32)


class _TorchBackend:
    name, fixed_shape = "torch", None

    def __init__(self, module):
        import torch

        self.module, self.version, self._torch = module, torch.__version__, torch

    def feed(self, input_ids, attention_mask):
        torch = self._torch
        return (torch.from_numpy(np.ascontiguousarray(input_ids, dtype=np.int64)),
                torch.from_numpy(np.ascontiguousarray(attention_mask, dtype=np.int64)))

    def invoke(self, feed):
        with self._torch.inference_mode():
            return self.module(*feed).float().numpy()


def torch_runner(module) -> Runner:
    """A Runner over a torch module `forward(input_ids, attention_mask) -> (B, C)` (eval mode)."""
    return BackendRunner(_TorchBackend(module.eval()))


_ORT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}


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
        if len(inputs) != 2:
            raise UserError(f"{path}: expected 2 inputs (input_ids, attention_mask), "
                            f"got {len(inputs)}")
        # Map by name when the model uses ours, else by position. [(name, numpy dtype)]
        by_name = {i.name: i for i in inputs}
        ordered = [by_name[n] for n in INPUT_NAMES] if set(INPUT_NAMES) <= set(by_name) else inputs
        self._inputs = [(i.name, _ORT_DTYPES.get(i.type, np.int64)) for i in ordered]
        shape = ordered[0].shape
        self.fixed_shape = tuple(shape) if all(isinstance(d, int) for d in shape) else None

    def feed(self, input_ids, attention_mask):
        arrays = (input_ids, attention_mask)
        return {name: np.ascontiguousarray(a, dtype=dtype)
                for (name, dtype), a in zip(self._inputs, arrays)}

    def invoke(self, feed):
        return self.session.run(None, feed)[0]


class _LiteRtBackend:
    name = "litert"

    def __init__(self, path: Path, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.version = package_version("ai-edge-litert")
        signatures = self.interpreter.get_signature_list()
        if len(signatures) != 1:
            raise UserError(f"{path}: expected one signature, got {len(signatures)}")
        self.runner = self.interpreter.get_signature_runner(next(iter(signatures)))
        details = self.runner.get_input_details()  # {signature input name: details}
        if len(details) != 2:
            raise UserError(f"{path}: expected 2 inputs (input_ids, attention_mask), "
                            f"got {len(details)}")
        # litert-torch names inputs after forward's kwargs (and sorts them); files converted from
        # positional args have args_0, args_1 in forward order.
        names = list(INPUT_NAMES) if set(INPUT_NAMES) <= set(details) else sorted(details)
        self._inputs = [(n, details[n]["dtype"]) for n in names]
        self.fixed_shape = tuple(int(d) for d in details[names[0]]["shape"])
        output = next(iter(self.runner.get_output_details().values()))
        self._output_name = next(iter(self.runner.get_output_details()))
        self._scale, self._zero = output["quantization"]  # (0.0, 0) when not quantized

    def feed(self, input_ids, attention_mask):
        return {name: np.ascontiguousarray(a, dtype=dtype)
                for (name, dtype), a in zip(self._inputs, (input_ids, attention_mask))}

    def invoke(self, feed):
        out = self.runner(**feed)[self._output_name]
        if self._scale:  # int8/uint8 outputs of a quantized model
            return (out.astype(np.float32) - self._zero) * self._scale
        return out


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _executorch_threads(threads: int) -> int | None:
    """Size ExecuTorch's CPU threadpool (XNNPACK runs on it; process-wide); returns the count it
    reports, or None when this build offers no way to set it (the runtime's default is used)."""
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:
        return None
    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    count = getattr(portable_lib, "_threadpool_get_thread_count", None)
    if reset is None or count is None:
        return None
    if count() != threads:
        reset(threads)
    return int(count())


class _ExecuTorchBackend:
    """`executorch.runtime` on a .pte's "forward" (targets/pte.py writes them): exactly
    `bounded_shape[0]` rows of at most `bounded_shape[1]` tokens (the bounds its memory was
    planned for). `threads` sizes ExecuTorch's process-wide threadpool, which XNNPACK runs on."""

    name = "executorch"
    fixed_shape = None

    def __init__(self, path: Path, threads: int):
        require("pte", f"artifact {path}")
        import torch

        with quiet_fd2():  # the runtime's C++ logs (cpuinfo, threadpool) go to fd 2
            from executorch.runtime import Runtime

            self.threads = _executorch_threads(threads)
            method = Runtime.get().load_program(str(path)).load_method("forward")
        meta = method.metadata
        if meta.num_inputs() != 2 or meta.num_outputs() != 1:
            raise UserError(f"{path}: expected 2 inputs (input_ids, attention_mask) and one "
                            f"output, got {meta.num_inputs()} and {meta.num_outputs()}")
        sizes = tuple(int(d) for d in meta.input_tensor_meta(0).sizes())
        if len(sizes) != 2:
            raise UserError(f"{path}: expected (batch, seq) inputs, got shape {sizes}")
        self.bounded_shape = sizes  # (rows exactly, tokens at most)
        self.version = package_version("executorch")
        self._method, self._torch = method, torch

    def feed(self, input_ids, attention_mask):
        return [self._torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
                for a in (input_ids, attention_mask)]

    def invoke(self, feed):
        return self._method.execute(feed)[0].numpy()


@contextlib.contextmanager
def quiet_fd2():
    """Hide fd-2 chatter (ExecuTorch's C++ logs, exporter warnings) for the block; errors raise."""
    import warnings

    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_BACKENDS = {".onnx": (_OrtBackend, "ONNX"), ".tflite": (_LiteRtBackend, "TFLite"),
             ".pte": (_ExecuTorchBackend, "ExecuTorch")}


def load_runner(path: Path, threads: int = 1) -> Runner:
    """A Runner for an exported artifact, chosen by suffix (.onnx, .tflite or .pte).

    Raises UserError if the file is missing, has another suffix, is not a valid model, or needs
    a runtime that is not installed (ExecuTorch: an optional extra).
    """
    path = Path(path)
    if path.suffix not in _BACKENDS:
        raise UserError(f"{path}: unknown artifact type {path.suffix!r} "
                        f"(expected one of: {', '.join(_BACKENDS)})")
    if not path.is_file():
        raise UserError(f"artifact not found: {path}")
    backend, kind = _BACKENDS[path.suffix]
    try:
        return BackendRunner(backend(path, threads))
    except UserError:
        raise
    except Exception as err:  # each runtime raises its own exception types for a bad file
        message = " ".join(str(err).split())[:300]
        raise UserError(f"{path} is not a valid {kind} model: {message}") from None
