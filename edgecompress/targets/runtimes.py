"""Run a model on tokenized batches the same way whatever it is: torch, ONNX Runtime or LiteRT.

Eval and bench only see `Runner.run(input_ids, attention_mask) -> (B, C) float32`. Fixed-shape
artifacts (every TFLite file, since litert-torch converts static shapes only) take any batch and
any sequence up to their fixed length: the runner pads and chunks, and returns the real rows. A
TFLite file may carry one signature per sequence length (`[shape] buckets`): each chunk runs on the
shortest signature that holds its unmasked tokens, so short sentences do not pay for 128.

Heavy imports (torch, onnxruntime, ai_edge_litert) happen inside the functions that need them, so
the bench child process pays only for the runtime it measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgecompress.errors import UserError

INPUT_NAMES = ("input_ids", "attention_mask")
PAD_ID = 0


class Runner(Protocol):
    name: str  # "torch" | "onnxruntime" | "litert"
    version: str  # the runtime's version, for reports
    fixed_shape: tuple[int, int] | None  # (batch, seq) the artifact requires; None if dynamic
    buckets: tuple[int, ...]  # fixed shapes: the sequence lengths it has signatures for

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

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Outputs (B, C) float32. Raises UserError for inputs the artifact cannot take."""
        input_ids, attention_mask = np.asarray(input_ids), np.asarray(attention_mask)
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise UserError(f"inputs must be two (batch, seq) arrays of one shape, got "
                            f"{input_ids.shape} and {attention_mask.shape}")
        if self.fixed_shape is None:
            return self._call(input_ids, attention_mask)
        fixed_batch, fixed_seq = self.fixed_shape
        rows, seq = input_ids.shape
        if seq > fixed_seq:
            raise UserError(f"this {self.name} artifact takes sequences of at most {fixed_seq} "
                            f"tokens, got {seq}")
        # Pad the sequence with pad id 0 and mask 0: padded keys are masked, outputs unchanged.
        ids = np.pad(input_ids, ((0, 0), (0, fixed_seq - seq)), constant_values=PAD_ID)
        mask = np.pad(attention_mask, ((0, 0), (0, fixed_seq - seq)), constant_values=0)
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
            # The shortest signature that holds every unmasked token: the columns cut are masked.
            width = bucket_for(chunk_mask, self.buckets)
            outputs.append(self._call(chunk_ids[:, :width], chunk_mask[:, :width])[:real])
        return np.concatenate(outputs)

    @property
    def buckets(self) -> tuple[int, ...]:
        """Sequence lengths the artifact has a signature for (fixed shapes); () when dynamic."""
        if self.fixed_shape is None:
            return ()
        return getattr(self.backend, "buckets", None) or (self.fixed_shape[1],)

    def _call(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        out = self.backend.invoke(self.backend.feed(input_ids, attention_mask))
        return np.asarray(out, dtype=np.float32)


def bucket_for(mask: np.ndarray, buckets: tuple[int, ...]) -> int:
    """The shortest of `buckets` (ascending) holding every unmasked column of `mask` (B, S)."""
    columns = np.flatnonzero(np.asarray(mask).any(axis=0))
    needed = int(columns[-1]) + 1 if columns.size else 1
    return next((b for b in buckets if b >= needed), buckets[-1])


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
    """Every signature of the file, by sequence length: one per length bucket (or just one).

    `seq` keeps only the signature of that length (the parity gate checks each in turn).
    """

    name = "litert"

    def __init__(self, path: Path, threads: int, seq: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.version = package_version("ai-edge-litert")
        signatures = {}
        for key in self.interpreter.get_signature_list():
            signature = _LiteRtSignature(self.interpreter.get_signature_runner(key), path)
            if signature.batch_seq[1] in signatures:
                raise UserError(f"{path}: two signatures take {signature.batch_seq[1]} tokens")
            signatures[signature.batch_seq[1]] = signature
        if seq is not None:
            if seq not in signatures:
                raise UserError(f"{path}: no signature takes {seq} tokens "
                                f"(it has {', '.join(map(str, sorted(signatures)))})")
            signatures = {seq: signatures[seq]}
        self._signatures = dict(sorted(signatures.items()))
        batches = {s.batch_seq[0] for s in self._signatures.values()}
        if len(batches) != 1:
            raise UserError(f"{path}: signatures disagree on the batch size ({sorted(batches)})")
        self.buckets = tuple(self._signatures)
        self.fixed_shape = (batches.pop(), self.buckets[-1])

    def feed(self, input_ids, attention_mask):
        signature = self._signatures.get(input_ids.shape[1])
        if signature is None:
            raise UserError(f"no signature takes {input_ids.shape[1]} tokens "
                            f"(this artifact has {', '.join(map(str, self.buckets))})")
        return signature, signature.feed(input_ids, attention_mask)

    def invoke(self, feed):
        signature, arrays = feed
        return signature.invoke(arrays)


class _LiteRtSignature:
    """One signature runner: its two inputs, fixed (batch, seq), and the output's dequantization."""

    def __init__(self, runner, path: Path):
        self.runner = runner
        details = runner.get_input_details()  # {signature input name: details}
        if len(details) != 2:
            raise UserError(f"{path}: expected 2 inputs (input_ids, attention_mask), "
                            f"got {len(details)}")
        # litert-torch names inputs after forward's kwargs (and sorts them); files converted from
        # positional args have args_0, args_1 in forward order.
        names = list(INPUT_NAMES) if set(INPUT_NAMES) <= set(details) else sorted(details)
        self._inputs = [(n, details[n]["dtype"]) for n in names]
        self.batch_seq = tuple(int(d) for d in details[names[0]]["shape"])
        outputs = runner.get_output_details()
        self._output_name = next(iter(outputs))
        self._scale, self._zero = outputs[self._output_name]["quantization"]  # (0.0, 0): float

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


_BACKENDS = {".onnx": (_OrtBackend, "ONNX"), ".tflite": (_LiteRtBackend, "TFLite")}


def load_runner(path: Path, threads: int = 1, *, seq: int | None = None) -> Runner:
    """A Runner for an exported artifact, chosen by suffix (.onnx or .tflite).

    `seq`: of a TFLite file with one signature per length bucket, use only the one of `seq`
    tokens. Raises UserError if the file is missing, has another suffix, is not a valid model,
    or has no signature of `seq` tokens.
    """
    path = Path(path)
    if path.suffix not in _BACKENDS:
        raise UserError(f"{path}: unknown artifact type {path.suffix!r} "
                        f"(expected one of: {', '.join(_BACKENDS)})")
    if not path.is_file():
        raise UserError(f"artifact not found: {path}")
    backend, kind = _BACKENDS[path.suffix]
    try:
        return BackendRunner(backend(path, threads) if seq is None
                             else backend(path, threads, seq=seq))
    except UserError:
        raise
    except Exception as err:  # each runtime raises its own exception types for a bad file
        message = " ".join(str(err).split())[:300]
        raise UserError(f"{path} is not a valid {kind} model: {message}") from None
