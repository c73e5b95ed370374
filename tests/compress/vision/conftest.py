"""Tiny Vision Transformers and image folders: every image path runs in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecompress.compress.models.vision import VitShape, create_vit

SHAPE = VitShape(image_size=8, channels=1, patch=4, hidden=32, layers=2, heads=4, ffn=64)
CLASSES = ("bars", "blocks")


def write_images(folder: Path, per_class: int = 20, size: int = 8, seed: int = 0) -> Path:
    """`folder`/<class>/<i>.png: vertical bars vs. filled blocks, plus noise (8x8 grey PNGs)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in CLASSES:
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size))
            if label == "bars":
                image[:, ::2] += 180
            else:
                image[size // 4: 3 * size // 4, size // 4: 3 * size // 4] += 180
            Image.fromarray(image.clip(0, 255).astype(np.uint8), mode="L").save(
                folder / label / f"{i}.png")
    return folder


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("images") / "shapes")


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-vit") / "vit"
    create_vit(out, SHAPE, CLASSES, seed=0)
    return out
