"""Deployment bundles: everything one device needs, checksummed, with a runner that needs only
numpy, the tokenizers library and the runtime.

    model.onnx | model.tflite     the verified artifact
    tokenizer.json                the tokenizer (the `tokenizers` library reads it directly)
    labels.json                   class names, index = output position
    manifest.json                 sha256 of every file, runtime + version, input/output names,
                                  shapes, dtypes, quantization parameters, shape policy
    run.py                        predict on text / benchmark on the device (bundle_runner.py)
    SHA256SUMS                    sha256sum-format list that also covers manifest.json

`verify_bundle` recomputes every hash: one flipped byte in any file is reported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import (atomic_directory, atomic_write_json, atomic_write_text,
                                 sha256_file)

RUNNER = Path(__file__).with_name("bundle_runner.py")
SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"


ONNX_DTYPES = {"tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(float)": "float32",
               "tensor(float16)": "float16", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}


def _onnx_spec(tensor) -> dict:
    shape = [d if isinstance(d, int) else str(d) for d in tensor.shape]  # named dims stay names
    return {"name": tensor.name, "shape": shape, "dtype": ONNX_DTYPES.get(tensor.type, tensor.type)}


def _onnx_io(path: Path) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {t.name: _onnx_spec(t) for t in session.get_inputs()}
    ordered = [inputs.get("input_ids"), inputs.get("attention_mask")]
    return {"inputs": ordered if None not in ordered else list(inputs.values()),
            "outputs": [_onnx_spec(t) for t in session.get_outputs()], "signature": None,
            "runtime_version": ort.__version__}


def _tflite_spec(name: str, details: dict) -> dict:
    scale, zero_point = details["quantization"]  # (0.0, 0) for float tensors
    return {"name": name, "shape": [int(x) for x in details["shape"]],
            "dtype": details["dtype"].__name__, "scale": float(scale),
            "zero_point": int(zero_point)}


def _tflite_io(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    from edgecompress.targets.runtimes import package_version

    interpreter = Interpreter(model_path=str(path))
    signature = next(iter(interpreter.get_signature_list()))
    runner = interpreter.get_signature_runner(signature)
    inputs = runner.get_input_details()
    names = ["input_ids", "attention_mask"] if {"input_ids", "attention_mask"} <= set(inputs) \
        else sorted(inputs)
    return {"inputs": [_tflite_spec(n, inputs[n]) for n in names],
            "outputs": [_tflite_spec(n, d) for n, d in runner.get_output_details().items()],
            "signature": signature, "runtime_version": package_version("ai-edge-litert")}


def _io(artifact: Path) -> dict:
    return _onnx_io(artifact) if artifact.suffix == ".onnx" else _tflite_io(artifact)


def _bundle_manifest(source: dict, artifact: Path, io: dict, profile) -> dict:
    fixed = profile.shape == "fixed"
    return {
        "target": profile.name, "format": profile.format, "runtime": profile.runtime,
        "runtime_version": io["runtime_version"], "scheme": source.get("scheme"),
        "quantization": source.get("quantization") or {"scheme": source.get("scheme")},
        "artifact": artifact.name, "threads": profile.threads, "fixed_shape": fixed,
        "batch": profile.batch, "seq_len": profile.seq_len,
        "inputs": io["inputs"], "outputs": io["outputs"], "signature": io["signature"],
        "labels": source.get("labels", []), "pad_token_id": source.get("pad_token_id", 0),
        "vocab_size": source.get("vocab_size", 1000), "task": source.get("task"),
        "parity": source.get("parity"), "source": source.get("source"),
    }


def make_bundle(artifact_dir: Path, profile, out: Path, *, force: bool = False) -> dict:
    """Build a bundle in `out` from an artifact folder (artifact + tokenizer + manifest.json).

    Returns the bundle manifest. Raises UserError when the folder is incomplete or `out` exists
    (unless `force`).
    """
    source = _read_source(artifact_dir)
    artifact = artifact_dir / source["artifact"]
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already exists; pass --force to replace it")
    manifest = _bundle_manifest(source, artifact, _io(artifact), profile)
    with atomic_directory(out) as tmp:
        shutil.copy2(artifact, tmp / artifact.name)
        shutil.copy2(artifact_dir / "tokenizer.json", tmp / "tokenizer.json")
        shutil.copy2(RUNNER, tmp / "run.py")
        atomic_write_json(tmp / "labels.json", manifest["labels"])
        files = sorted(p.name for p in tmp.iterdir())
        manifest["files"] = {name: sha256_file(tmp / name) for name in files}
        atomic_write_json(tmp / MANIFEST, manifest)
        sums = {**manifest["files"], MANIFEST: sha256_file(tmp / MANIFEST)}
        atomic_write_text(tmp / SUMS, "".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    return manifest


def _read_source(artifact_dir: Path) -> dict:
    path = artifact_dir / MANIFEST
    if not path.exists():
        raise UserError(f"{artifact_dir} holds no {MANIFEST}: not an exported artifact folder")
    source = json.loads(path.read_text())
    for needed in (source.get("artifact", ""), "tokenizer.json"):
        if not needed or not (artifact_dir / needed).exists():
            raise UserError(f"{artifact_dir} lacks {needed or 'an artifact'}")
    return source


def verify_bundle(bundle: Path) -> list[str]:
    """Problems found (changed, missing or unlisted files); [] when the bundle is intact."""
    if not (bundle / SUMS).exists() or not (bundle / MANIFEST).exists():
        return [f"{bundle} is not a bundle (no {SUMS} or {MANIFEST})"]
    listed = {}
    for line in (bundle / SUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = _check_files(bundle, listed)
    try:
        in_manifest = json.loads((bundle / MANIFEST).read_text()).get("files", {})
    except (json.JSONDecodeError, UnicodeDecodeError):
        return problems + [f"{MANIFEST}: not valid JSON"]
    for name, digest in in_manifest.items():
        if listed.get(name) != digest:
            problems.append(f"{name}: {MANIFEST} and {SUMS} disagree")
    return problems


def _check_files(bundle: Path, listed: dict[str, str]) -> list[str]:
    problems = []
    for name, digest in sorted(listed.items()):
        path = bundle / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: changed (sha256 differs)")
    extra = {p.name for p in bundle.iterdir() if p.is_file()} - set(listed) - {SUMS}
    problems += [f"{name}: not part of the bundle" for name in sorted(extra)]
    return problems
