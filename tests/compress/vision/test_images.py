"""Image sets: user folders (classes by folder name, one size, images only) and the registry's
digits, fetched from the scikit-learn wheel and checked by sha256."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.data.datasets import load_dataset
from edgecompress.errors import UserError
from tests.compress.vision.conftest import CLASSES, write_images

runner = CliRunner()


def test_image_folder_loads_classes_by_folder_name_when_split_is_drawn(image_folder):
    data = load_dataset(str(image_folder))
    assert data.modality == "image" and data.labels == CLASSES
    assert data.split_sizes() == {"train": 32, "dev": 4, "test": 4} and data.drawn_splits
    image, label = data.split("train").texts[0], data.split("train").labels[0]
    assert image.shape == (8, 8) and image.dtype == np.uint8
    # a "bars" image has bright even columns; the label says which folder it came from
    assert (image[:, ::2].mean() > image[:, 1::2].mean()) == (CLASSES[label] == "bars")


def test_image_folder_matches_split_folders_by_name_when_test_orders_classes_differently(
        tmp_path):
    write_images(tmp_path / "set" / "train")
    write_images(tmp_path / "set" / "test", per_class=3, seed=1)
    (tmp_path / "set" / "test" / "blocks").rename(tmp_path / "set" / "test" / "0-blocks")
    with pytest.raises(UserError, match="'0-blocks' is not among train's classes"):
        load_dataset(str(tmp_path / "set"))
    (tmp_path / "set" / "test" / "0-blocks").rename(tmp_path / "set" / "test" / "blocks")
    data = load_dataset(str(tmp_path / "set"))
    assert data.split_sizes() == {"train": 36, "dev": 4, "test": 6}
    assert "dev drawn from train" in data.split_line()


def _refused(tmp_path, folder, capsys=None) -> str:
    result = runner.invoke(app, ["init-vit", str(tmp_path / "out"), "--dataset", str(folder)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing half-written
    return lines[0]


def test_image_set_refused_in_one_line_when_a_file_is_not_an_image(tmp_path):
    folder = write_images(tmp_path / "set", per_class=3)
    (folder / "bars" / "notes.png").write_text("not an image at all")
    line = _refused(tmp_path, folder)
    assert "notes.png is not an image" in line


def test_image_set_refused_in_one_line_when_images_differ_in_size(tmp_path):
    folder = write_images(tmp_path / "set", per_class=3)
    write_images(tmp_path / "big", per_class=1, size=12)
    (tmp_path / "big" / "bars" / "0.png").rename(folder / "bars" / "big.png")
    line = _refused(tmp_path, folder)
    assert "big.png is 12x12" in line and "8x8" in line


def test_init_vit_shapes_the_model_for_the_image_set(tmp_path, image_folder):
    from edgecompress.compress.models.loading import load_model

    result = runner.invoke(app, ["init-vit", str(tmp_path / "vit"), "--dataset",
                                 str(image_folder), "--patch", "4", "--hidden", "16",
                                 "--layers", "1", "--heads", "2", "--ffn", "32"])
    assert result.exit_code == 0, result.output
    loaded = load_model(tmp_path / "vit")
    assert loaded.labels == CLASSES and loaded.tokenizer.shape == (1, 8, 8)
    assert loaded.module.hf.config.patch_size == 4


@pytest.mark.slow
def test_digits_fetched_from_the_pinned_wheel_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMPRESS_CACHE", str(tmp_path))
    data = load_dataset("digits")
    assert data.split_sizes() == {"train": 1257, "dev": 180, "test": 360}
    assert data.split("test").texts[0].shape == (8, 8)
    assert (tmp_path / "datasets" / "digits-scikit-learn-1.9.1.npz").is_file()
    counts = np.bincount(data.split("train").labels, minlength=10)
    assert counts.min() > 100  # every digit is in train
