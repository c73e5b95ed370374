"""Vision Transformers: HF `ViTForImageClassification` / `DeiTForImageClassification` checkpoints
as a `LoadedModel` whose module takes `pixel_values` (B, C, H, W) float32, and the image processor
that plays the tokenizer's part (images in, model inputs out).

The processor reads and writes the checkpoint's `preprocessor_config.json` in the keys HF's
ViTImageProcessor uses (rescale 1/255, per-channel mean / std, size), but it never resizes: an
image of another size than the model's is refused in one line. Images are uint8 arrays (H, W) or
(H, W, C), as the image datasets (compress/data/images.py) hold them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgecompress.compress.models.arch import VISION_FAMILIES
from edgecompress.compress.models.modules import LoadedModel, one_line, read_config_object
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_text, mark_output

PROCESSOR_FILE = "preprocessor_config.json"


@dataclass(frozen=True)
class ImageProcessor:
    """uint8 images -> {"pixel_values": float32 (B, C, H, W)}: x / 255, then (x - mean) / std."""

    height: int
    width: int
    channels: int = 1
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __post_init__(self) -> None:
        if min(self.height, self.width, self.channels) < 1:
            raise ValueError(f"image size and channels must be >= 1, got {self.height}x"
                             f"{self.width}x{self.channels}")
        if len(self.mean) not in (1, self.channels) or len(self.std) not in (1, self.channels):
            raise ValueError(f"mean / std need 1 or {self.channels} values")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def encode_examples(self, images) -> dict[str, np.ndarray]:
        """{"pixel_values": (B, C, H, W) float32}; UserError for an image of another size."""
        stacked = np.stack([self._chw(np.asarray(image)) for image in images]).astype(np.float32)
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return {"pixel_values": (stacked / 255.0 - mean) / std}

    def _chw(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[:2] != (self.height, self.width):
            raise UserError(f"image of shape {image.shape} does not fit this model's "
                            f"{self.height}x{self.width} input (images are not resized)")
        if image.shape[2] != self.channels:
            if image.shape[2] == 1:  # grey into a colour model
                image = np.repeat(image, self.channels, axis=2)
            elif self.channels == 1:  # colour into a grey model: the mean of the channels
                image = image.mean(axis=2, keepdims=True)
            else:
                raise UserError(f"image has {image.shape[2]} channels, the model {self.channels}")
        return np.transpose(image, (2, 0, 1))  # (C, H, W)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write `preprocessor_config.json` (HF ViTImageProcessor keys) into `directory`."""
        config = {"image_processor_type": "ViTImageProcessor", "do_resize": False,
                  "size": {"height": self.height, "width": self.width}, "do_rescale": True,
                  "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(self.mean),
                  "image_std": list(self.std), "num_channels": self.channels}
        atomic_write_text(Path(directory) / PROCESSOR_FILE, json.dumps(config, indent=2))

    @classmethod
    def from_dir(cls, directory: Path, channels: int | None = None) -> ImageProcessor:
        """The processor saved in `directory`; UserError when it is missing or malformed."""
        file = Path(directory) / PROCESSOR_FILE
        if not file.is_file():
            raise UserError(f"{directory} has no {PROCESSOR_FILE} (an image model needs its "
                            "image processor settings)")
        config = read_config_object(file)
        try:
            size = config["size"]
            mean, std = tuple(config["image_mean"]), tuple(config["image_std"])
            return cls(int(size["height"]), int(size["width"]),
                       int(channels or config.get("num_channels") or len(mean)),
                       tuple(float(m) for m in mean), tuple(float(s) for s in std))
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{file}: expected size {{height, width}}, image_mean and image_std "
                            f"({one_line(err)})") from None


class ImageClassifierModule(nn.Module):
    """HF image classifier -> plain logits tensor (B, num_labels) from pixel_values."""

    output_kind = "logits"
    input_names = ("pixel_values",)  # targets/inputs.py: what exporters and runtimes feed

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=pixel_values).logits


def is_vision_config(config: dict) -> bool:
    return config.get("model_type") in VISION_FAMILIES


def is_image_classifier(config: dict) -> bool:
    return any(a.endswith("ForImageClassification") for a in config.get("architectures") or [])


def load_vision(path: Path, config: dict, *, num_labels: int | None = None,
                labels: tuple[str, ...] = ()) -> LoadedModel:
    """A ViT / DeiT image classifier from `path` (safetensors, no remote code, offline).

    `num_labels` asks for a fresh head (fine-tuning). Raises UserError for a checkpoint that is
    no image classifier, lacks its processor file, or does not load.
    """
    from transformers import AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    if not (is_image_classifier(config) or num_labels):
        raise UserError(f"{path}: a {config.get('model_type')} checkpoint loads as an image "
                        "classifier only (architectures lists no *ForImageClassification)")
    processor = ImageProcessor.from_dir(path, config.get("num_channels"))
    hf_logging.set_verbosity_error()
    extra = {}
    if num_labels:
        extra = dict(num_labels=num_labels, ignore_mismatched_sizes=True)
        if labels:
            extra.update(id2label=dict(enumerate(labels)),
                         label2id={name: i for i, name in enumerate(labels)})
    try:
        hf = AutoModelForImageClassification.from_pretrained(
            str(path), use_safetensors=True, attn_implementation="eager", local_files_only=True,
            trust_remote_code=False, **extra)
    except (OSError, ValueError, RuntimeError) as err:
        raise UserError(f"cannot load {path}: {one_line(err)}") from None
    labels = tuple(hf.config.id2label[i] for i in range(hf.config.num_labels))
    return LoadedModel(ImageClassifierModule(hf).eval(), processor, "hf", "classification",
                       path, labels)


@dataclass(frozen=True)
class VitShape:
    """A fresh ViT's shape: images `image_size`^2 x `channels`, patches `patch`^2."""

    image_size: int = 8
    channels: int = 1
    patch: int = 2
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    ffn: int = 128

    def __post_init__(self) -> None:
        for name in ("image_size", "channels", "patch", "hidden", "layers", "heads", "ffn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size % self.patch:
            raise ValueError(f"patch {self.patch} does not divide image size {self.image_size}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not a multiple of heads {self.heads}")


def create_vit(out: Path, shape: VitShape, labels: tuple[str, ...], *, seed: int = 0,
               mean: float = 0.5, std: float = 0.5) -> LoadedModel:
    """A fresh ViTForImageClassification of `shape` with classes `labels`, saved to `out`
    (safetensors + config + preprocessor_config.json); `finetune` then trains it."""
    from transformers import ViTConfig, ViTForImageClassification

    from edgecompress.compress.models.modules import check_out_location

    check_out_location(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already exists and is not empty")
    config = ViTConfig(image_size=shape.image_size, patch_size=shape.patch,
                       num_channels=shape.channels, hidden_size=shape.hidden,
                       num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                       intermediate_size=shape.ffn, num_labels=len(labels),
                       id2label=dict(enumerate(labels)),
                       label2id={name: i for i, name in enumerate(labels)},
                       attn_implementation="eager")
    torch.manual_seed(seed)
    hf = ViTForImageClassification(config).eval()
    processor = ImageProcessor(shape.image_size, shape.image_size, shape.channels,
                               (mean,) * shape.channels, (std,) * shape.channels)
    loaded = LoadedModel(ImageClassifierModule(hf), processor, "hf", "classification", out,
                         tuple(labels))
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out), safe_serialization=True)
    processor.save_pretrained(out)
    mark_output(out, "checkpoint")
    return loaded
