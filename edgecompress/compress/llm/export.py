"""Export a decoder to an LLM target and verify it: the target format's converter writes the
artifact (CONVERTERS: ONNX Runtime GenAI's model builder, or edgecompress's GGUF writer +
llama.cpp's quantizer), its session is gated against the torch reference (gate.py), and the
record says what was built, how and how close it came.

Every check that needs no weights (target kind, what the converter takes, context, prompt
lengths, the held-out windows) runs before this: `edgecompress llm export` does them, the
converter's own through `check_target`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecompress.compress.llm.gate import gate_lm
from edgecompress.compress.llm.load import load_weights
from edgecompress.compress.llm.reference import TorchSession
from edgecompress.errors import UserError
from edgecompress.targets.llm import export_litert
from edgecompress.targets.llm.bench import artifact_bytes, llm_host
from edgecompress.targets.llm.session import open_session

RECORD = "llm_export.json"  # the record beside the artifact's files


@dataclass(frozen=True)
class Converter:
    """One LLM format's converter: `check(checkpoint, profile, vocab_from)` raises UserError for
    what it cannot take (config and file headers only); `build(checkpoint, out, profile,
    vocab_from)` writes into folder `out` and returns (its settings, the artifact's path)."""

    check: Callable[..., None]
    build: Callable[..., tuple[dict, Path]]


def _check_onnx_genai(checkpoint: Path, profile, vocab_from: Path | None) -> None:
    from edgecompress.targets.llm.export_ortgenai import check_builder_input

    check_builder_input(checkpoint, profile.name)


def _build_onnx_genai(checkpoint: Path, out: Path, profile, vocab_from: Path | None):
    from edgecompress.targets.llm.export_ortgenai import build_ortgenai

    builder = build_ortgenai(checkpoint, out, scheme=profile.scheme,
                             block_size=profile.block_size,
                             accuracy_level=profile.accuracy_level, target=profile.name)
    return builder, out  # the folder is the artifact


def _check_gguf(checkpoint: Path, profile, vocab_from: Path | None) -> None:
    from edgecompress.targets.extras import require
    from edgecompress.targets.llm.gguf_export import check_export

    require("gguf", f"target {profile.name}")  # the check reads the tokenizer GGUF
    check_export(checkpoint, vocab_from)


def _build_gguf(checkpoint: Path, out: Path, profile, vocab_from: Path | None):
    from importlib.metadata import version

    from edgecompress.targets.llm.gguf_export import FLOAT_SCHEMES, export_gguf, tensor_types

    path = export_gguf(checkpoint, out, profile.scheme, vocab_from=vocab_from,
                       threads=profile.threads)
    quantizer = None if profile.scheme in FLOAT_SCHEMES else \
        f"llama_model_quantize (llama-cpp-python {version('llama-cpp-python')})"
    return {"tool": "edgecompress.targets.llm.gguf_export", "gguf": version("gguf"),
            "scheme": profile.scheme, "quantizer": quantizer,
            "tokenizer_from": Path(vocab_from).name, "tensor_types": tensor_types(path)}, path


def _check_pte(checkpoint: Path, profile, vocab_from: Path | None) -> None:
    from edgecompress.targets.llm.export_executorch import check_export_input

    check_export_input(checkpoint, profile.name, profile.max_context)


def _build_pte(checkpoint: Path, out: Path, profile, vocab_from: Path | None):
    from edgecompress.targets.llm.export_executorch import build_pte

    return build_pte(checkpoint, out, scheme=profile.scheme, group_size=profile.group_size,
                     max_context=profile.max_context, target=profile.name)


# format (LLMProfile.format) -> its converter; a new format is one entry
CONVERTERS: dict[str, Converter] = {
    "onnx-genai": Converter(_check_onnx_genai, _build_onnx_genai),
    "gguf": Converter(_check_gguf, _build_gguf),
    "tflite": Converter(export_litert.check_target, export_litert.build_target),
    "pte": Converter(_check_pte, _build_pte),
}


def check_target(checkpoint: Path, profile, *, vocab_from: Path | None = None) -> None:
    """UserError (one line) when target `profile`'s converter cannot take `checkpoint`: its
    architecture, shapes, or (GGUF) the tokenizer GGUF `vocab_from`. Reads no weights."""
    CONVERTERS[profile.format].check(Path(checkpoint), profile, vocab_from)


def tokenizer_gguf(model: str) -> Path | None:
    """The GGUF whose tokenizer a GGUF export of `model` copies: `model` itself when it is a
    .gguf file, else the GGUF of the registry model it is or was pruned / distilled from
    (sources.py; fetched and sha256-checked, cached), else None (a user's own checkpoint)."""
    from edgecompress.compress.llm.sources import fetch_model, source_model

    if Path(model).suffix == ".gguf" and Path(model).is_file():
        return Path(model)
    source = source_model(model)
    return fetch_model(source) if source is not None else None


def export_lm(checkpoint: Path, tokenizer, profile, out: Path, *, windows,
              prompts: dict[str, list[int]], vocab_from: Path | None = None) -> dict:
    """Convert `checkpoint` for LLM target `profile` into folder `out`, then gate it against the
    fp32 torch model on `windows` (metrics.token_windows) and the greedy `prompts` ({text: ids}).
    `vocab_from`: the tokenizer GGUF of a GGUF target (tokenizer_gguf).

    Returns the record (target, builder settings, the artifact's name inside `out`, size, gate,
    host); the caller writes it and calls gate.require_pass. Raises UserError / RuntimeError
    from the converter.
    """
    builder, artifact = CONVERTERS[profile.format].build(Path(checkpoint), Path(out), profile,
                                                         vocab_from)
    session = open_session(artifact, threads=profile.threads)
    reference = TorchSession(load_weights(checkpoint))
    try:
        gate = gate_lm(session, reference, windows, profile.gate, prompts=prompts,
                       decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    finally:
        session.close()
    size = artifact_bytes(artifact)
    return {"checkpoint": str(checkpoint), "target": profile.to_json(), "format": profile.format,
            "artifact": "." if artifact == Path(out) else artifact.name,
            "builder": builder, "size_bytes": size, "size_mb": size / 1e6,
            "within_size_budget": None if profile.size_mb is None
            else size / 1e6 <= profile.size_mb,
            "gate": gate, "host": llm_host(profile.threads)}


def exported_format(model: str) -> str | None:
    """The format of `model` when it names an exported LLM artifact other than a GGUF (a .gguf
    is evaluated as the checkpoint transformers converts it to); None otherwise."""
    from edgecompress.targets.llm.session import OPENERS

    path = Path(model)
    return next((name for name, opener in OPENERS.items()
                 if name != "gguf" and path.exists() and opener.recognises(path)), None)


def record_path(artifact: Path) -> Path:
    """The export record of `artifact` (a file, or an ONNX Runtime GenAI folder): RECORD in its
    folder (`llm export --out`), else one folder up (a run keeps the artifact in
    artifacts/<target>/model/ and the record beside that folder); the first when neither exists."""
    folder = artifact if artifact.is_dir() else artifact.parent
    return next((path for path in (folder / RECORD, folder.parent / RECORD) if path.is_file()),
                folder / RECORD)


def artifact_reference(artifact: Path, reference: str | None) -> str:
    """The model `artifact` is compared with: `reference`, else the model its RECORD names;
    UserError when neither says."""
    if reference is not None:
        return reference
    record = record_path(artifact)
    try:
        return json.loads(record.read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"--reference is needed to evaluate {artifact} (the model it was "
                        f"exported from: its tokenizer and the torch reference; no {RECORD} "
                        "beside it names one)") from None


def evaluate_artifact(artifact: Path, checkpoint: Path, tokenizer, windows, config,
                      prompts: tuple[str, ...], *, context: int) -> dict:
    """`llm eval` of exported `artifact` (1 thread) against the fp32 torch model of
    `checkpoint` (`context` tokens) on `windows` and greedy `prompts`: gate.evaluate_session's
    dict. UserError for a prompt beyond the context (the artifact's own limit: its session)."""
    from edgecompress.compress.llm.gate import evaluate_session
    from edgecompress.compress.llm.metrics import check_prompts

    check_prompts(tokenizer, prompts if config.max_new_tokens else (), context,
                  config.max_new_tokens)
    session = open_session(artifact, threads=1)
    try:
        return evaluate_session(
            session, TorchSession(load_weights(checkpoint)), windows, config,
            prompts={p: tokenizer(p)["input_ids"] for p in prompts},
            decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    finally:
        session.close()
