"""Export a torch module for a target profile, then verify the artifact against torch — always.

`export` writes one self-contained file (`<name>.onnx`, `<name>.tflite` or `<name>.pte`) — or an
OpenVINO IR, `<name>.xml` with its weights in `<name>.bin` — atomically, runs it in the target's
runtime next to torch on the sample inputs, and keeps it only if the outputs agree within the
profile's tolerance; otherwise the artifact is deleted and
`ParityError` is raised. A quantized scheme (the profile's default, or `scheme=`) is applied to
the fp32 file before that check (targets/quantize.py) — or, for ExecuTorch, to the torch graph
before lowering (targets/pte.py) — and the check then uses the scheme's tolerance and agreement.

The module is any `forward(*inputs) -> (B, C) float` over text inputs `(input_ids (B, S),
attention_mask (B, S))` or image inputs `(pixel_values (B, C, H, W),)` (targets/inputs.py). A module
whose `output_kind` is "embedding" (a mean-pooled sentence encoder) is gated on every row's cosine
to torch instead of argmax agreement, which says nothing about an embedding vector.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecompress.errors import ParityError
from edgecompress.fsutil import mark_output
from edgecompress.stats import wilson_interval
from edgecompress.targets.extras import require
from edgecompress.targets.inputs import (
    fit_sample,
    is_image,
    pad_rows,
    row_count,
    sample_inputs,
)
from edgecompress.targets.preflight import check_integer_graph
from edgecompress.targets.profiles import AGREEMENT_RULE, Profile
from edgecompress.targets.quantize import QuantOptions, quantize_artifact, relative_error
from edgecompress.targets.runtime_util import (
    artifact_bytes,
    copy_artifact,
    package_version,
    quiet_exporters,
    remove_artifact,
    replace_artifact,
)
from edgecompress.targets.runtimes import load_runner, torch_runner

OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ExportResult:
    """A verified artifact and what was measured when it was made."""

    path: Path
    format: str  # "onnx" | "tflite" | "pte" | "openvino"
    scheme: str
    size_bytes: int
    max_abs_diff: float  # max |artifact - torch| over the verification sample
    agreement: float  # fraction of sample rows whose argmax matches torch
    input_shape: tuple  # (batch, seq) or (batch, C, H, W); None for a dynamic axis
    profile: str
    exporter: str  # "torch.onnx (dynamo)" | "litert-torch" | "executorch (...)"
    exporter_version: str
    opset: int | None
    seconds: float  # export + verification wall time
    tolerance: float = 0.0  # the parity gate this artifact passed: max |diff| (float schemes)
    min_agreement: float = 1.0  # ... argmax agreement ...
    quantization: dict | None = None  # what quantize_artifact did (None for fp32)
    rel_error: float = 0.0  # ||artifact - torch|| / ||torch|| over the sample
    max_rel_error: float = 0.0  # ... and its bound (int8 schemes), both the scheme's
    sample_rows: int = 0  # rows of the verification sample
    gated_on: str = "max_abs_diff+agreement"  # or "agreement+rel_error" (int8 schemes)
    cosine: float | None = None  # embedding outputs: the lowest row cosine to torch ...
    min_cosine: float | None = None  # ... and its bound (the scheme's)
    buckets: tuple = ()  # fixed shapes: the sequence lengths with a signature each
    # how the runtime is told to run it (openvino: {"inference_precision": "f32"}); {} for none
    runtime_options: dict = field(default_factory=dict)
    # the agreement's 95 % Wilson interval over sample_rows, where the gate decided on it
    # (min_agreement < 1, argmax outputs; profiles.AGREEMENT_RULE); None otherwise
    agreement_ci95: tuple | None = None

    def to_json(self) -> dict:
        """Plain-JSON form for manifests."""
        data = asdict(self)
        data["path"], data["input_shape"] = str(self.path), list(self.input_shape)
        data["buckets"] = list(self.buckets)
        if self.agreement_ci95 is not None:
            data["agreement_ci95"] = list(self.agreement_ci95)
        return data


# format -> function(module, sample, profile, path) that writes the artifact; returns the
# exporter's name and version. Filled by @_exporter.
_EXPORTERS: dict[str, Callable[..., tuple[str, str]]] = {}


def _exporter(fmt: str):
    def register(fn):
        _EXPORTERS[fmt] = fn
        return fn
    return register


def export(module, sample: dict[str, np.ndarray], profile: Profile, out_dir: Path,
           name: str = "model", *, scheme: str | None = None,
           quant: QuantOptions | None = None, base: ExportResult | None = None) -> ExportResult:
    """Export `module` for `profile` in `scheme` into `out_dir/<name><suffix>`, verified vs torch.

    `sample` holds int `input_ids` and `attention_mask` (B, S): real tokenized sentences, with
    padding, cut to the profile's seq_len for fixed and dynamic-seq shapes; or float32
    `pixel_values` (B, C, H, W) for an image model. `scheme` defaults to the profile's; `quant`
    carries calibration samples and layers kept in float; `base`, an fp32 export of this module
    for this profile, is copied instead of converting again (not for formats quantized in torch:
    those lower `module` again). Returns the ExportResult.
    Raises ParityError (and keeps no file) when the artifact is off, UserError for a scheme the
    target cannot run or a format whose optional extra is missing, ValueError for an unknown
    format or a static scheme without samples.
    """
    spec = profile.scheme_for(scheme)
    gate = profile.gate(spec.name)
    if profile.format not in _EXPORTERS:
        raise ValueError(f"no exporter for format {profile.format!r} "
                         f"(known: {', '.join(_EXPORTERS)})")
    require(profile.format, f"target {profile.name}")  # before any folder is made
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    if created:  # a folder export makes is its output; a folder given to it is the caller's
        mark_output(out_dir, "export")
    sample = _fit_sample(sample, profile)
    final = out_dir / f"{name}{profile.suffix}"
    # Same suffix as the final file: load_runner picks the runtime by suffix.
    temp = out_dir / f".{name}.{uuid.uuid4().hex[:8]}.partial{profile.suffix}"
    start = time.perf_counter()
    with _eval_mode(module):
        if base is None:  # an op an integer-only target cannot run is refused before converting
            check_integer_graph(module, sample, profile)
        parts = _gate_parts(sample, profile)
        reference = _torch_outputs(module, parts)  # before exporting: conversion may mutate
        try:
            exporter, version, info = _write(module, sample, profile, temp, spec, quant, base)
            measured = _compare(temp, reference, parts, profile, reported=final,
                                scheme=spec.name, embedding=_is_embedding(module))
        except BaseException:
            remove_artifact(temp)
            raise
    replace_artifact(temp, final)
    return ExportResult(
        path=final, format=profile.format, scheme=spec.name,
        size_bytes=artifact_bytes(final), max_abs_diff=measured.max_abs_diff,
        agreement=measured.agreement, input_shape=_input_shape(sample, profile),
        profile=profile.name, exporter=exporter, exporter_version=version, opset=profile.opset,
        seconds=round(time.perf_counter() - start, 3), tolerance=gate.tolerance,
        min_agreement=gate.min_agreement, quantization=info, rel_error=measured.rel_error,
        max_rel_error=gate.max_rel_error, sample_rows=int(reference.shape[0]),
        gated_on=_gated_on(gate, measured.cosine is not None), cosine=measured.cosine,
        min_cosine=gate.min_cosine if measured.cosine is not None else None,
        buckets=profile.seq_buckets if profile.fixed_shape and not is_image(sample) else (),
        runtime_options=_runtime_options(profile), agreement_ci95=measured.agreement_ci95)


def _runtime_options(profile: Profile) -> dict:
    """What the artifact tells its runtime beyond threads: OpenVINO's precision hint."""
    if profile.format != "openvino":
        return {}
    return {"inference_precision": profile.inference_precision or "runtime default"}


def _input_shape(sample: dict, profile: Profile) -> tuple:
    """The artifact's input shape: the profile's (batch, seq) for text, (batch, C, H, W) for
    images (batch None when dynamic)."""
    if not is_image(sample):
        return profile.input_shape
    batch = None if profile.shape == "dynamic" else profile.batch
    return (batch, *sample["pixel_values"].shape[1:])


def _write(module, sample: dict, profile: Profile, temp: Path, spec, quant, base):
    """Write the `spec` artifact to `temp`; returns (exporter, version, quantization facts)."""
    if profile.quantizes_in_torch:  # the scheme is applied to the torch graph before lowering
        return _export_pte(module, sample, profile, temp, spec, quant)
    if base is not None:
        copy_artifact(base.path, temp)
        exporter, version = base.exporter, base.exporter_version
    else:
        exporter, version = _EXPORTERS[profile.format](module, sample, profile, temp)
    info = None
    if spec.quantized:
        info = _quantize_in_place(temp, spec, quant or QuantOptions(module=module), profile)
    return exporter, version, info


def _is_embedding(module) -> bool:
    """Whether `module` outputs sentence embeddings (compress/models/modules.MeanPoolingModule)."""
    return getattr(module, "output_kind", "logits") == "embedding"


def _gated_on(gate, embedding: bool) -> str:
    similar = "cosine" if embedding else "agreement"
    return f"{similar}+rel_error" if gate.int8 else f"max_abs_diff+{similar}"


def _quantize_in_place(path: Path, spec, quant: QuantOptions, profile: Profile) -> dict:
    """Replace the fp32 file at `path` by its `spec` version; returns quantize_artifact's facts."""
    staged = path.with_name(path.stem + ".q" + path.suffix)  # same suffix: tools pick by it
    try:
        info = quantize_artifact(path, staged, spec, quant, profile.fixed_shape)
        replace_artifact(staged, path)
    finally:
        remove_artifact(staged)
    return info


def verify(path: Path, module, sample: dict[str, np.ndarray], profile: Profile,
           scheme: str | None = None) -> tuple[float, float]:
    """Run the artifact at `path` and `module` on `sample`; compare outputs.

    Returns (max_abs_diff, argmax agreement). Raises ParityError when the artifact misses the
    gate of `scheme` (default: the profile's, see Profile.gate); UserError when the file is not
    a model the runtime can load.
    """
    sample = _fit_sample(sample, profile)
    with _eval_mode(module):
        parts = _gate_parts(sample, profile)
        reference = _torch_outputs(module, parts)
    measured = _compare(Path(path), reference, parts, profile, reported=Path(path),
                        scheme=scheme, embedding=_is_embedding(module))
    return measured.max_abs_diff, measured.agreement


@dataclass(frozen=True)
class Measured:
    max_abs_diff: float
    agreement: float
    rel_error: float
    scale: float  # max |torch output|: float rounding grows with it
    cosine: float | None = None  # embedding outputs: min over rows of cos(artifact, torch)
    rows: int = 0  # rows compared (every signature's, with length buckets)
    # 95 % Wilson interval of `agreement` when the gate decides on it (min_agreement < 1)
    agreement_ci95: tuple[float, float] | None = None


def _gate_parts(sample: dict, profile: Profile) -> list[tuple[int | None, dict]]:
    """What the gate runs: the sample, or with length buckets the sample cut to each bucket and
    run on that bucket's signature alone, so every signature is checked. [(seq or None, inputs)]"""
    if is_image(sample) or len(profile.seq_buckets) == 1:
        return [(None, sample)]
    return [(seq, {n: v[:, :seq] for n, v in sample.items()}) for seq in profile.seq_buckets]


TORCH_CHUNK = 64  # rows torch runs at once for the gate (1,008 rows at once: ~1 GB, estimated)


def _torch_outputs(module, parts: list[tuple[int | None, dict]]) -> np.ndarray:
    runner = torch_runner(module)
    return np.concatenate([runner.run(**{n: v[start:start + TORCH_CHUNK]
                                         for n, v in inputs.items()})
                           for _, inputs in parts
                           for start in range(0, row_count(inputs), TORCH_CHUNK)])


def _compare(path: Path, reference: np.ndarray, parts: list, profile: Profile, *,
             reported: Path, scheme: str | None = None, embedding: bool = False) -> Measured:
    """The artifact vs torch's `reference` (B, C) on the gate's `parts` (see _gate_parts),
    checked against the gate; `embedding` outputs are compared by cosine rather than argmax."""
    gate = profile.gate(scheme)
    outputs = np.concatenate([load_runner(path, threads=profile.threads, seq=seq).run(**inputs)
                              for seq, inputs in parts])
    if outputs.shape != reference.shape:
        raise ParityError(str(reported), {OUTPUT_NAME: float("inf")}, gate.tolerance)
    error = outputs.astype(np.float64) - reference
    # NaN anywhere must fail, so compare with nan-aware max
    diff = float(np.max(np.abs(error), initial=0.0))
    diff = float("inf") if np.isnan(diff) else diff
    rel = relative_error(outputs, reference)
    agreeing = int(np.sum(outputs.argmax(-1) == reference.argmax(-1)))
    rows = int(reference.shape[0])
    agreement = agreeing / rows if rows else 0.0
    interval = (wilson_interval(agreeing, rows)
                if not embedding and gate.min_agreement < 1.0 else None)
    measured = Measured(diff, agreement, rel, float(np.max(np.abs(reference), initial=0.0)),
                        _min_cosine(outputs, reference) if embedding else None, rows, interval)
    _check_gate(measured, gate, reported)
    return measured


def _min_cosine(outputs: np.ndarray, reference: np.ndarray) -> float:
    """The lowest cos(artifact row, torch row) over (B, H) outputs; NaN counts as -1."""
    a, b = outputs.astype(np.float64), reference.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosines = np.sum(a * b, axis=1) / np.clip(norms, 1e-12, None)
    return float(np.min(np.nan_to_num(cosines, nan=-1.0), initial=1.0))


def _check_gate(measured: Measured, gate, reported: Path) -> None:
    """Raise ParityError naming what missed: the values measured next to their bounds."""
    misses, diffs = [], {OUTPUT_NAME: measured.max_abs_diff}
    bound = gate.tolerance * max(1.0, measured.scale)  # float error is relative to magnitude
    if not gate.int8 and measured.max_abs_diff > bound:
        misses.append(f"max |diff| {measured.max_abs_diff:.3g} > {gate.tolerance:g} x "
                      f"max(1, max |output| {measured.scale:.3g})")
    if measured.cosine is not None and measured.cosine < gate.min_cosine:
        misses.append(f"lowest row cosine to torch {measured.cosine:.4f} < {gate.min_cosine:g}")
        diffs[f"{OUTPUT_NAME} 1 - cosine"] = 1 - measured.cosine
    if measured.cosine is None and agreement_misses(measured, gate.min_agreement):
        misses.append(_agreement_words(measured, gate.min_agreement))
        diffs[f"{OUTPUT_NAME} argmax disagreement"] = 1 - measured.agreement
    if gate.int8 and measured.rel_error > gate.max_rel_error:
        misses.append(f"relative error {measured.rel_error:.3g} > {gate.max_rel_error:g}")
        diffs[f"{OUTPUT_NAME} relative error"] = measured.rel_error
    if misses:
        raise ParityError(str(reported), diffs, gate.tolerance, detail="; ".join(misses),
                          facts=_gate_facts(measured, gate))


def agreement_misses(measured: Measured, min_agreement: float) -> bool:
    """Whether the agreement misses `min_agreement` by the gate's rule: with an interval, its
    upper bound below the bound (profiles.AGREEMENT_RULE); else (full agreement asked) any miss."""
    if measured.agreement_ci95 is not None:
        return measured.agreement_ci95[1] < min_agreement
    return measured.agreement < min_agreement


def _agreement_words(measured: Measured, min_agreement: float) -> str:
    """'argmax agreement 89.0% [95 % CI 87.0%, 90.8%] on 1008 rows, upper bound < 90%'. No ': '
    in it: the report keeps what follows the last one as the short reason."""
    if measured.agreement_ci95 is None:
        return f"argmax agreement {measured.agreement:.1%} < {min_agreement:.0%}"
    low, high = measured.agreement_ci95
    return (f"argmax agreement {measured.agreement:.1%} [95 % CI {low:.1%}, {high:.1%}] on "
            f"{measured.rows} rows, upper bound < {min_agreement:.0%}")


def _gate_facts(measured: Measured, gate) -> dict:
    """What the gate measured and held it to, for refused.json."""
    facts = {"rows": measured.rows, "agreement": measured.agreement,
             "min_agreement": gate.min_agreement, "rel_error": measured.rel_error,
             "max_rel_error": gate.max_rel_error if gate.int8 else None,
             "max_abs_diff": measured.max_abs_diff}
    if measured.agreement_ci95 is not None:
        facts.update(agreement_ci95=list(measured.agreement_ci95), rule=AGREEMENT_RULE)
    if measured.cosine is not None:
        facts.update(cosine=measured.cosine, min_cosine=gate.min_cosine)
    return facts


def _fit_sample(sample: dict[str, np.ndarray], profile: Profile) -> dict[str, np.ndarray]:
    """Just the model's inputs: text as int64 (B, S), S cut to the profile's longest
    (max_seq_len); images as float32 (B, C, H, W). ValueError when the sample holds neither."""
    return fit_sample(sample, profile.max_seq_len)


@contextlib.contextmanager
def _eval_mode(module):
    """Eval mode for the block, then every submodule's own training flag back.

    torch.onnx.export restores only the top module's flag, recursively, which turned dropout on
    inside a wrapped HF model whose wrapper had never been put in eval mode.
    """
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags:
            m.training = training


@_exporter("onnx")
def _export_onnx(module, sample: dict, profile: Profile, path: Path) -> tuple[str, str]:
    """torch.onnx's dynamo exporter, one self-contained file, dynamic (batch, seq) if asked."""
    import torch

    names = sample_inputs(sample)
    if profile.fixed_shape:
        arrays = pad_rows(sample, *profile.fixed_shape)
        dynamic = None
    else:
        arrays = sample
        # text: (batch, seq) dynamic; images: batch only (the patch grid is fixed by the model)
        axes = ({0: torch.export.Dim.DYNAMIC} if is_image(names) else
                {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC})
        dynamic = {name: axes for name in names}
    # int64 (B, S) token inputs or float32 (B, C, H, W) pixels
    args = tuple(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names)
    with quiet_exporters():
        program = torch.onnx.export(
            module, args, input_names=list(names), output_names=[OUTPUT_NAME],
            opset_version=profile.opset, dynamo=True, dynamic_shapes=dynamic, verbose=False)
    if dynamic:
        _name_dynamic_axes(program.model)
    # external_data=False: weights inside the .onnx, no side .onnx.data file to lose
    program.save(str(path), external_data=False)
    return "torch.onnx (dynamo)", torch.__version__


def _name_dynamic_axes(model) -> None:
    """Rename the exporter's symbolic dims (s43, s72, ...) to 'batch' and 'seq'.

    The exporter may give input_ids and attention_mask different batch symbols; one name per axis
    tells users (and ORT's shape checks) that they are the same.
    """
    import onnx_ir as ir

    names = {}
    for value in model.graph.inputs:
        for dim, label in zip(value.shape, ("batch", "seq")):
            if isinstance(dim, ir.SymbolicDim):
                names[dim.value] = label
    for value in [*model.graph.inputs, *model.graph.outputs]:
        if value.shape is not None:
            value.shape = ir.Shape([names.get(d.value, d.value) if isinstance(d, ir.SymbolicDim)
                                    else d for d in value.shape])


@_exporter("tflite")
def _export_tflite(module, sample: dict, profile: Profile, path: Path) -> tuple[str, str]:
    """litert-torch at the profile's static (batch, seq_len), int32 inputs named by forward; one
    signature per length bucket (`seq32`, `seq64`, ...) when the profile has buckets."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its progress log floods the CLI
    import litert_torch

    buckets = (None,) if is_image(sample) else profile.seq_buckets
    with quiet_exporters():
        if len(buckets) == 1:
            edge_model = litert_torch.convert(module, sample_kwargs=_tflite_kwargs(sample, profile))
        else:
            converter = litert_torch
            for seq in buckets:
                converter = converter.signature(f"seq{seq}", module,
                                                sample_kwargs=_tflite_kwargs(sample, profile, seq))
            edge_model = converter.convert()
    edge_model.export(str(path))
    return "litert-torch", package_version("litert-torch")


def _tflite_kwargs(sample: dict, profile: Profile, seq: int | None = None) -> dict:
    """Tracing inputs of the profile's batch, text padded to `seq` (default: seq_len). Keyword
    inputs make the signature inputs `input_ids` / `attention_mask` (or `pixel_values`) rather
    than args_0 / args_1; int32 token ids (what litert-torch emits anyway), float32 pixels."""
    import torch

    seq = seq or profile.seq_len
    cut = sample if is_image(sample) else {n: v[:, :seq] for n, v in sample.items()}
    arrays = pad_rows(cut, profile.batch, seq)
    return {name: torch.from_numpy(a if a.dtype == np.float32 else a.astype(np.int32))
            for name, a in arrays.items()}


@_exporter("pte")
def _export_pte(module, sample: dict, profile: Profile, path: Path, spec=None, quant=None):
    """ExecuTorch + XNNPACK (targets/pte.py): returns (exporter, version, quantization facts)."""
    from edgecompress.targets.pte import lower

    spec = spec or profile.scheme_for("fp32")
    exporter, version, facts = lower(module, sample, profile, path, spec, quant)
    if facts is not None:  # the same keys as quantize_artifact's
        facts = {"scheme": spec.name, "kind": spec.kind, "per_channel": spec.per_channel,
                 "float_scopes": [], **facts}
    return exporter, version, facts


@_exporter("openvino")
def _export_openvino(module, sample: dict, profile: Profile, path: Path) -> tuple[str, str]:
    """openvino.convert_model from torch, fp32 IR (targets/openvino_backend.py)."""
    from edgecompress.targets.openvino_backend import convert

    return convert(module, sample, profile, path)
