"""Open anything evaluable — a checkpoint directory or an exported `.onnx` / `.tflite` / `.pte`
file — as a runner plus the tokenizer and labels that go with it, and export a loaded model for a
target.

An exported artifact lives in a folder with its tokenizer files and a `manifest.json` (written by
`export_artifact`), so it can be evaluated and bundled without the checkpoint it came from.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.loading import LoadedModel, check_checkpoint, load_model
from edgecompress.compress.models.modules import TOKENIZER_FILES, check_out_location
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, check_replaceable, read_json
from edgecompress.rundir import MANIFEST_FILE
from edgecompress.targets.profiles import AGREEMENT_RULE, GATE_ROWS

ARTIFACT_SUFFIXES = (".onnx", ".tflite", ".pte", ".xml")  # .xml: an OpenVINO IR (+ its .bin)
MANIFEST = MANIFEST_FILE  # an artifact folder's record, in a run or on its own

# Parity inputs: real sentences of varied length, so padding is exercised in every export.
PARITY_SENTENCES = (
    "a gorgeous, witty, seductive movie.",
    "the plot is nothing but boilerplate clichés from start to finish, and the script is "
    "a tired rehash of better films.",
    "it's a charming and often affecting journey.",
    "dull",
    "an utterly charming and hilarious film that reminded me why i love going to the movies.",
    "the acting is stiff and the direction never finds a rhythm",
    "not bad",
    "one of the most exquisitely crafted and emotionally devastating films of the decade.",
)


@dataclass(frozen=True)
class Evaluable:
    """A runner with the tokenizer and labels that belong to it."""

    runner: object  # edgecompress.targets.Runner
    tokenizer: object
    labels: tuple[str, ...]
    task: str
    source: Path


def open_evaluable(spec: str | Path, *, threads: int = 1,
                   tokenizer: Path | None = None) -> Evaluable:
    """Checkpoint dir / built-in name -> torch runner; artifact file -> its runtime's runner."""
    from edgecompress.targets import load_runner, torch_runner

    path = Path(spec)
    if path.suffix in ARTIFACT_SUFFIXES or path.is_file():
        if not path.exists():
            raise UserError(f"artifact not found: {path}")
        manifest = _artifact_manifest(path)
        tok = _load_inputs(tokenizer or path.parent, manifest)  # before the runtime: cheaper
        runner = load_runner(path, threads=threads)
        labels = tuple(str(name) for name in manifest.get("labels") or ())
        task = manifest.get("task", "classification")
        if task == "classification" and labels:
            _check_label_count(path, labels, output_width(runner, tok))
        return Evaluable(runner, tok, labels, task, path)
    loaded = load_model(spec)
    return Evaluable(torch_runner(loaded.module), loaded.tokenizer, loaded.labels, loaded.task,
                     loaded.path)


def output_width(runner, tokenizer) -> int:
    """How many outputs a model has per input (C of its (B, C)): one run on one parity input."""
    if hasattr(tokenizer, "encode_examples"):
        sample = tokenizer.encode_examples(_parity_images(tokenizer.shape)[:1])
    else:
        sample = tokenize(tokenizer, PARITY_SENTENCES[:1], max_length=16)
    return int(np.asarray(runner.run(**sample)).shape[-1])


def _check_label_count(path: Path, labels: tuple[str, ...], width: int) -> None:
    """A manifest naming another number of classes than the model has outputs describes some
    other model: the artifact folder is corrupt, whatever the data. Raises UserError."""
    if width != len(labels):
        raise UserError(f"{path.parent / MANIFEST} names {len(labels)} labels "
                        f"({', '.join(labels)}) but {path.name} has {width} outputs: a corrupt "
                        f"artifact (export it again)")


def _artifact_manifest(path: Path) -> dict:
    if path.suffix not in ARTIFACT_SUFFIXES:
        raise UserError(f"{path} is not an ONNX, TFLite, ExecuTorch or OpenVINO artifact "
                        f"(expected .onnx, .tflite, .pte or .xml)")
    manifest = path.parent / MANIFEST
    if not manifest.exists():
        return {}
    try:
        data = read_json(manifest)
    except ValueError as err:  # not JSON, or not UTF-8
        raise UserError(f"{manifest} is unreadable: {' '.join(str(err).split())[:200]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("labels", []), list):
        raise UserError(f"{manifest}: expected a JSON object with a 'labels' list")
    return data


def _load_inputs(directory: Path, manifest: dict):
    """The tokenizer, or for an image artifact (manifest modality "image") the image processor,
    saved next to the artifact (or in `directory`)."""
    if manifest.get("modality") == "image":
        from edgecompress.compress.models.vision import ImageProcessor

        return ImageProcessor.from_dir(directory)
    return load_tokenizer(directory)


def load_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    if not directory.is_dir():
        raise UserError(f"tokenizer directory not found: {directory}")
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"no tokenizer in {directory} (none of {', '.join(TOKENIZER_FILES)}; "
                        "pass --tokenizer DIR)")
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as err:
        raise UserError(f"no tokenizer in {directory} (pass --tokenizer DIR): "
                        f"{' '.join(str(err).split())[:200]}") from None


PARITY_IMAGES = 8  # images of the parity sample (an image model has no parity sentences)


def parity_sample(tokenizer, seq_len: int) -> dict[str, np.ndarray]:
    """Tokenized PARITY_SENTENCES padded to the longest (at most `seq_len`); for an image
    processor, PARITY_IMAGES seeded images in its shape: gradients, blocks and noise (uint8)."""
    if hasattr(tokenizer, "encode_examples"):
        return tokenizer.encode_examples(_parity_images(tokenizer.shape))
    return tokenize(tokenizer, PARITY_SENTENCES, max_length=seq_len)


def _parity_images(shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Fixed uint8 (H, W, C) images exercising the whole value range, seeded."""
    channels, height, width = shape
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, height * width).reshape(height, width)
    images = [ramp, ramp.T if height == width else ramp[::-1], np.zeros((height, width)),
              np.full((height, width), 255.0)]
    images += [rng.integers(0, 256, (height, width)) for _ in range(PARITY_IMAGES - len(images))]
    return [np.repeat(np.asarray(i, np.uint8)[:, :, None], channels, axis=2) for i in images]


def gate_sample(tokenizer, texts, seq_len: int, *, rows: int = GATE_ROWS,
                seed: int = 0) -> dict[str, np.ndarray]:
    """PARITY_SENTENCES plus up to `rows` of `texts` (a seeded draw of real held-out sentences;
    the target's `gate_rows`), tokenized and padded together: what a quantized artifact is
    verified on."""
    import random

    texts = list(texts)
    picked = random.Random(seed).sample(range(len(texts)), min(rows, len(texts)))
    picked = [texts[i] for i in picked]
    if hasattr(tokenizer, "encode_examples"):  # images: the parity images plus real ones
        return tokenizer.encode_examples(_parity_images(tokenizer.shape) + picked)
    return tokenize(tokenizer, list(PARITY_SENTENCES) + picked, max_length=seq_len)


def export_artifact(loaded: LoadedModel, profile, out_dir: Path, *, source: str) -> dict:
    """Export + verify `loaded` for `profile` into `out_dir` with tokenizer and manifest.

    Returns the manifest. Raises ParityError (artifact removed) when verification fails.
    """
    from edgecompress.targets import export

    out_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    result = export(loaded.module, parity_sample(loaded.tokenizer, profile.seq_len), profile,
                    out_dir)
    loaded.tokenizer.save_pretrained(str(out_dir))
    manifest = artifact_manifest(result, profile, loaded, source=source, began=began)
    atomic_write_json(out_dir / MANIFEST, manifest)
    return manifest


def artifact_manifest(result, profile, loaded: LoadedModel, *, source: str, began: float) -> dict:
    """What an artifact folder says about its artifact (read by eval, report, bundle, bench)."""
    return {
        "kind": "artifact", "target": profile.name, "format": result.format,
        "scheme": result.scheme, "runtime": profile.runtime, "threads": profile.threads,
        "artifact": result.path.name, "size_bytes": result.size_bytes,
        "parity": {"max_abs_diff": result.max_abs_diff, "agreement": result.agreement,
                   "tolerance": result.tolerance, "min_agreement": result.min_agreement,
                   "rel_error": result.rel_error, "max_rel_error": result.max_rel_error,
                   "sample_rows": result.sample_rows, "gated_on": result.gated_on,
                   **({"agreement_ci95": list(result.agreement_ci95),
                       "agreement_rule": AGREEMENT_RULE}
                      if result.agreement_ci95 is not None else {}),
                   **({"cosine": result.cosine, "min_cosine": result.min_cosine}
                      if result.cosine is not None else {})},
        "quantization": result.quantization,
        "input_shape": list(result.input_shape) if result.input_shape else None,
        "buckets": list(result.buckets),
        **({"runtime_options": result.runtime_options} if result.runtime_options else {}),
        "budgets": {"size_mb": profile.size_mb, "latency_ms": profile.latency_ms,
                    "ram_mb": profile.ram_mb},
        "source": source, "labels": list(loaded.labels), "task": loaded.task,
        **input_facts(loaded.tokenizer), "seconds": round(time.perf_counter() - began, 2),
    }


def input_facts(tokenizer) -> dict:
    """What a manifest says about the inputs: pad id and vocabulary of a tokenizer, or the
    modality and (C, H, W) of an image processor."""
    if hasattr(tokenizer, "encode_examples"):
        return {"modality": "image", "image_shape": list(tokenizer.shape)}
    return {"pad_token_id": tokenizer.pad_token_id or 0, "vocab_size": len(tokenizer)}


def parity_words(parity: dict) -> str:
    """How close an artifact came to torch, in the terms it was gated on: argmax agreement, or
    for a sentence encoder the lowest row cosine; each with its bound."""
    if parity.get("cosine") is not None:
        return f"min cosine {parity['cosine']:.4f} (>= {parity['min_cosine']:g})"
    ci = parity.get("agreement_ci95")
    if ci is not None:  # gated on the interval (export._check_gate)
        return (f"argmax agreement {parity['agreement']:.1%} [95 % CI {ci[0]:.1%}, {ci[1]:.1%}] "
                f"on {parity['sample_rows']} rows (refused only when the upper bound is below "
                f"{parity['min_agreement']:.0%})")
    return f"argmax agreement {parity['agreement']:.0%} (>= {parity['min_agreement']:.0%})"


def difference_words(parity: dict) -> str:
    """The artifact's distance to torch with the bound it was held to: max |diff| for fp32 /
    fp16 gates, the relative error where int8 gates use it (max |diff| is then only reported)."""
    if "rel_error" in str(parity.get("gated_on", "")) and parity.get("rel_error") is not None:
        return (f"relative error {parity['rel_error']:.3g} (<= {parity['max_rel_error']:g}), "
                f"max |diff| {parity['max_abs_diff']:.3g} (reported, not gated)")
    return f"max |diff| {parity['max_abs_diff']:.3g} (<= {parity['tolerance']:g})"


def prepare_out_dir(out: Path, *, force: bool) -> None:
    """Make `out` ready for a new artifact: missing or empty is fine; anything else needs
    `force` and must be an edgecompress output (then it is cleared). Raises UserError."""
    if out.exists() and out.is_dir() and not any(out.iterdir()):
        return
    check_replaceable(out, force)
    if out.exists():
        shutil.rmtree(out)


def precheck_export(model: str, out: Path, *, force: bool) -> None:
    """What `export` / `quantize` can refuse before any data is read or fetched: a model that
    is no usable checkpoint, an `out` that is a file, or one holding something that is not an
    artifact folder (a folder with a manifest may be the same export, cached)."""
    check_out_location(out)
    check_checkpoint(model)
    if not (out / MANIFEST).is_file():
        check_replaceable(out, force)
