"""Deployment bundles: everything one device needs, checksummed, with a runner that needs only
numpy, the tokenizers library and the runtime (ExecuTorch 1.5's Python runtime brings torch: its
tensors are torch tensors; on the phone the .pte runs in the C++ / Java runtime).

    model.onnx | .tflite | .pte   the verified artifact
    tokenizer.json                the tokenizer (the `tokenizers` library reads it directly)
    labels.json                   class names, index = output position
    manifest.json                 sha256 of every file, runtime + version, input/output names,
                                  shapes, dtypes, quantization parameters, shape policy
    run.py                        predict on text / benchmark on the device (bundle_runner.py)
    SHA256SUMS                    sha256sum-format list that also covers manifest.json
    .edgecompress-output          ownership marker (lets --force replace it); not in the sums

`verify_bundle` recomputes every hash: one flipped byte in any file is reported, and so is a file
the sums do not cover; a SHA256SUMS line pointing outside the bundle is reported, never read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from edgecompress.errors import UserError
from edgecompress.fsutil import (
    OUTPUT_MARKER,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    check_replaceable,
    inside,
    mark_output,
    sha256_file,
)
from edgecompress.targets.extras import require

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
    """Inputs / outputs of the longest signature, and every signature by its sequence length."""
    from ai_edge_litert.interpreter import Interpreter

    from edgecompress.targets.runtime_util import package_version

    interpreter = Interpreter(model_path=str(path))
    by_seq = {}
    for key in interpreter.get_signature_list():
        inputs = interpreter.get_signature_runner(key).get_input_details()
        by_seq[int(next(iter(inputs.values()))["shape"][1])] = key
    signature = by_seq[max(by_seq)]
    runner = interpreter.get_signature_runner(signature)
    inputs = runner.get_input_details()
    names = ["input_ids", "attention_mask"] if {"input_ids", "attention_mask"} <= set(inputs) \
        else sorted(inputs)
    return {"inputs": [_tflite_spec(n, inputs[n]) for n in names],
            "outputs": [_tflite_spec(n, d) for n, d in runner.get_output_details().items()],
            "signature": signature, "runtime_version": package_version("ai-edge-litert"),
            "signatures": [{"seq_len": n, "name": by_seq[n]} for n in sorted(by_seq)]}


def _pte_io(path: Path) -> dict:
    """A .pte's inputs (no names inside: ours, in forward's order) and output, from the runner
    (the shapes are the bounds its memory was planned for: rows exactly, tokens at most)."""
    from edgecompress.targets.runtimes import INPUT_NAMES, load_runner

    runner = load_runner(path)
    batch, seq = runner.bounded_shape
    outputs = runner.run(np.ones((batch, 2), np.int64), np.ones((batch, 2), np.int64))
    return {"inputs": [{"name": n, "shape": [batch, seq], "dtype": "int64"} for n in INPUT_NAMES],
            "outputs": [{"name": "logits", "shape": list(outputs.shape), "dtype": "float32"}],
            "signature": "forward", "runtime_version": runner.version}


_IO = {".onnx": _onnx_io, ".tflite": _tflite_io, ".pte": _pte_io}


def _io(artifact: Path) -> dict:
    return _IO[artifact.suffix](artifact)


def _bundle_manifest(source: dict, artifact: Path, io: dict, profile) -> dict:
    fixed = profile.shape == "fixed"  # dynamic-seq (pte): `batch` rows, up to seq_len tokens
    return {
        "target": profile.name, "format": profile.format, "runtime": profile.runtime,
        "runtime_version": io["runtime_version"], "scheme": source.get("scheme"),
        "quantization": source.get("quantization") or {"scheme": source.get("scheme")},
        "artifact": artifact.name, "threads": profile.threads, "fixed_shape": fixed,
        "shape_policy": profile.shape, "batch": profile.batch, "seq_len": profile.seq_len,
        "inputs": io["inputs"], "outputs": io["outputs"], "signature": io["signature"],
        "signatures": io.get("signatures", []),  # TFLite: one per length bucket, ascending
        "labels": source.get("labels", []), "pad_token_id": source.get("pad_token_id", 0),
        "vocab_size": source.get("vocab_size", 1000), "task": source.get("task"),
        "parity": source.get("parity"), "source": source.get("source"),
    }


def make_bundle(artifact_dir: Path, profile, out: Path, *, force: bool = False) -> dict:
    """Build a bundle in `out` from an artifact folder (artifact + tokenizer + manifest.json).

    Returns the bundle manifest. Raises UserError when the folder is incomplete or its
    manifest.json is malformed, or when `out` is a file, lies under one, or is a non-empty
    directory (with `force`: one that is not an edgecompress output is still refused).
    The bundle gets an `.edgecompress-output` marker (kind "bundle"), outside SHA256SUMS.
    """
    source = _read_source(artifact_dir)
    artifact = artifact_dir / source["artifact"]
    check_replaceable(out, force)
    if artifact.suffix != profile.suffix:
        raise UserError(f"target {profile.name} runs {profile.suffix} artifacts, "
                        f"{artifact_dir} holds {artifact.name}")
    require(profile.format, f"target {profile.name}")
    if artifact.suffix not in _IO:
        raise UserError(f"target {profile.name}: bundles of {profile.format} artifacts are not "
                        f"available (the bundle runner runs {', '.join(_IO)} files)")
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
        mark_output(tmp, "bundle")  # after the sums: verify_bundle ignores the marker
    return manifest


# Keys of an artifact folder's manifest.json that the bundle reads, and their JSON types.
_SOURCE_TYPES = {"labels": list, "pad_token_id": int, "vocab_size": int}


def _read_source(artifact_dir: Path) -> dict:
    """The artifact folder's manifest.json, checked; UserError (one line) when it is unusable."""
    path = artifact_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{artifact_dir} holds no {MANIFEST}: not an exported artifact folder")
    try:
        source = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({' '.join(str(err).split())})") from None
    if not isinstance(source, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(source).__name__}")
    name = source.get("artifact")
    if not isinstance(name, str) or not name:
        raise UserError(f"{path}: artifact: missing (expected the artifact's file name)")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise UserError(f"{path}: artifact: expected a plain file name, got {name!r}")
    for key, expected in _SOURCE_TYPES.items():
        value = source.get(key)
        if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            raise UserError(f"{path}: {key}: expected {expected.__name__}, "
                            f"got {type(value).__name__}")
    for needed in (name, "tokenizer.json"):
        if not (artifact_dir / needed).is_file():
            raise UserError(f"{artifact_dir} lacks {needed}")
    return source


def verify_bundle(bundle: Path) -> list[str]:
    """Problems found, one line each; [] when the bundle is intact.

    Reports changed, missing and unlisted files (recursively), SHA256SUMS lines that are malformed
    or name an absolute path, a `..` part, a directory or anything resolving outside the bundle
    (such paths are never read), and a SHA256SUMS or manifest.json that is not UTF-8 or not
    well-formed. The `.edgecompress-output` marker is not covered by the sums and is ignored.
    Raises UserError when `bundle` does not exist or is a file.
    """
    bundle = Path(bundle)
    if not bundle.exists():
        raise UserError(f"bundle not found: {bundle}")
    if not bundle.is_dir():
        raise UserError(f"{bundle} is a file, not a bundle directory")
    if not (bundle / SUMS).is_file() or not (bundle / MANIFEST).is_file():
        return [f"{bundle} is not a bundle (no {SUMS} or {MANIFEST})"]
    try:
        text = (bundle / SUMS).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return [f"{SUMS}: not UTF-8 text"]
    listed, problems = _parse_sums(bundle, text)
    recorded, manifest_problems = _manifest_files(bundle)
    file_problems, edited = _check_files(bundle, listed, recorded)
    return (problems + file_problems + manifest_problems
            + _check_manifest(listed, {k: v for k, v in recorded.items() if k not in edited}))


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _parse_sums(bundle: Path, text: str) -> tuple[dict[str, str], list[str]]:
    """(name -> sha256 of every safe line, problems with the other lines)."""
    listed, problems = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep:  # sha256sum's binary mode: "<digest> *<name>"
            digest, sep, name = line.partition(" *")
        if not sep or not name or not _DIGEST.fullmatch(digest):
            problems.append(f"{SUMS} line {number}: malformed (expected '<sha256>  <file>')")
            continue
        unsafe = _unsafe_entry(bundle, name)
        if unsafe:
            problems.append(f"{SUMS} line {number}: {name!r} {unsafe}")
            continue
        listed[PurePosixPath(name).as_posix()] = digest
    return listed, problems


def _unsafe_entry(bundle: Path, name: str) -> str | None:
    """Why `name` may not be read as a bundle file, or None; looks at no file's content."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or PureWindowsPath(name).anchor:  # /etc/x, C:/x, //host/x
        return "is an absolute path"
    if ".." in pure.parts or ".." in PureWindowsPath(name).parts:  # ../x, ..\\x
        return "contains '..'"
    try:
        inside(bundle, Path(name))  # a symlink pointing out of the bundle
    except UserError:
        return "resolves outside the bundle"
    if (bundle / name).is_dir():
        return "names a directory"
    return None


def _check_files(bundle: Path, listed: dict[str, str],
                 recorded: dict[str, str]) -> tuple[list[str], set[str]]:
    """(changed, missing and unlisted files; names whose SHA256SUMS line was edited). A file
    whose digest differs from its SHA256SUMS line but equals manifest.json's record is intact:
    the line was edited, and SHA256SUMS is the file named."""
    problems, edited = [], set()
    for name, digest in sorted(listed.items()):
        path = bundle / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif not path.is_file():  # a FIFO or device would block or never end
            problems.append(f"{name}: not a regular file")
        elif (actual := sha256_file(path)) != digest and recorded.get(name) == actual:
            edited.add(name)
            problems.append(f"{SUMS}: edited: its line for {name} does not match {name}, "
                            f"which still matches {MANIFEST}")
        elif actual != digest:
            problems.append(f"{name}: changed (sha256 differs)")
    extra = _present_files(bundle) - set(listed) - {SUMS, OUTPUT_MARKER}
    problems += [f"{name}: not part of the bundle" for name in sorted(extra)]
    return problems, edited


def _present_files(bundle: Path) -> set[str]:
    """Every non-directory under `bundle` (symlinks included, never followed), as posix paths."""
    found = set()
    for root, dirs, files in os.walk(bundle, followlinks=False):
        here = Path(root)
        links = [d for d in dirs if (here / d).is_symlink()]
        found |= {(here / n).relative_to(bundle).as_posix() for n in [*files, *links]}
    return found


def _manifest_files(bundle: Path) -> tuple[dict[str, str], list[str]]:
    """(manifest.json's `files` table as {posix name: sha256}, problems reading it)."""
    try:
        data = json.loads((bundle / MANIFEST).read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        return {}, [f"{MANIFEST}: not UTF-8 text"]
    except json.JSONDecodeError:
        return {}, [f"{MANIFEST}: not valid JSON"]
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}, [f"{MANIFEST}: expected a JSON object with a 'files' object"]
    return {PurePosixPath(str(name)).as_posix(): digest for name, digest in files.items()}, []


def _check_manifest(listed: dict[str, str], recorded: dict[str, str]) -> list[str]:
    """manifest.json's `files` table must agree with SHA256SUMS."""
    return [f"{name}: {MANIFEST} and {SUMS} disagree" for name, digest in recorded.items()
            if listed.get(name) != digest]
