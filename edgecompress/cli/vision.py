"""`edgecompress init-vit`: a fresh, small Vision Transformer shaped for an image set (its image
size, channels and classes), to be trained with `finetune` like any checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, guarded
from edgecompress.errors import UserError


@guarded
def init_vit_command(
    out: Path = typer.Argument(..., help="Directory to create."),
    dataset: str = typer.Option(..., help="Image set it is shaped for: registry name (digits) "
                                          "or a folder of class-named image folders."),
    patch: int = typer.Option(2, help="Patch side in pixels; divides the image side."),
    hidden: int = typer.Option(64), layers: int = typer.Option(4), heads: int = typer.Option(4),
    ffn: int = typer.Option(128), seed: int = typer.Option(0),
) -> None:
    """Create a randomly initialised ViTForImageClassification for DATASET's images."""
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.models.vision import VitShape, create_vit

    data = load_dataset(dataset)
    if data.modality != "image":
        raise UserError(f"dataset {data.name} holds text, not images: init-vit needs an image "
                        "set")
    image = next(iter(data.split("train").texts))
    height, width = image.shape[:2]
    if height != width:
        raise UserError(f"init-vit makes square models; {data.name}'s images are {width}x{height}")
    channels = image.shape[2] if image.ndim == 3 else 1
    try:
        shape = VitShape(image_size=height, channels=channels, patch=patch, hidden=hidden,
                         layers=layers, heads=heads, ffn=ffn)
    except ValueError as err:
        raise UserError(f"invalid ViT shape: {err}") from None
    create_vit(out, shape, data.labels, seed=seed)
    console.print(f"ViT ({height}x{width}x{channels}, patch {patch}, {layers} layers, hidden "
                  f"{hidden}, {len(data.labels)} classes) written to {out}")
