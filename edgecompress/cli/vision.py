"""`edgecompress init-vit`: a fresh, small Vision Transformer shaped for an image set (its image
size, channels and classes), to be trained with `finetune` like any checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, guarded
from edgecompress.cli.flags import in_flags
from edgecompress.cli.output import emit_result, json_mode
from edgecompress.errors import UserError

# The same names as init-encoder's counts (prune's --heads / --ffn / --layers are fractions)
INIT_VIT_RENAMES = {"--hidden": "--hidden-size", "--heads": "--num-heads", "--ffn": "--ffn-size",
                    "--layers": "--num-layers"}
_VIT_FLAGS = {"patch": "--patch", "hidden": "--hidden-size", "heads": "--num-heads",
              "ffn": "--ffn-size", "layers": "--num-layers"}


@guarded
def init_vit_command(
    out: Path = typer.Argument(..., help="Directory to create."),
    dataset: str = typer.Option(..., help="Image set it is shaped for: registry name (digits) "
                                          "or a folder of class-named image folders."),
    patch: int = typer.Option(2, help="Patch side in pixels; divides the image side."),
    hidden_size: int = typer.Option(64, help="Hidden size (width of every layer)."),
    num_layers: int = typer.Option(4, help="Encoder layers."),
    num_heads: int = typer.Option(4, help="Attention heads per layer; divides --hidden-size."),
    ffn_size: int = typer.Option(128, help="FFN (intermediate) width per layer."),
    seed: int = typer.Option(0, help="Initialisation seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the new "
                                 "model's path, shape and classes."),
) -> None:
    """Create a randomly initialised ViTForImageClassification for DATASET's images.

    Old names still accepted: --hidden, --layers, --heads, --ffn."""
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.models.vision import VitShape, create_vit

    with json_mode(as_json):
        data = load_dataset(dataset)
        if data.modality != "image":
            raise UserError(f"dataset {data.name} holds text, not images: init-vit needs an "
                            "image set")
        image = next(iter(data.split("train").texts))
        height, width = image.shape[:2]
        if height != width:
            raise UserError(f"init-vit makes square models; {data.name}'s images are "
                            f"{width}x{height}")
        channels = image.shape[2] if image.ndim == 3 else 1
        try:
            shape = VitShape(image_size=height, channels=channels, patch=patch,
                             hidden=hidden_size, layers=num_layers, heads=num_heads,
                             ffn=ffn_size)
        except ValueError as err:
            raise UserError(f"invalid ViT shape: {in_flags(str(err), _VIT_FLAGS)}") from None
        create_vit(out, shape, data.labels, seed=seed)
    result = {"out": str(out), "dataset": data.name, "image_size": height, "channels": channels,
              "patch": patch, "hidden_size": hidden_size, "num_layers": num_layers,
              "num_heads": num_heads, "ffn_size": ffn_size, "labels": list(data.labels)}
    emit_result(result, as_json, lambda r: console.print(
        f"ViT ({height}x{width}x{channels}, patch {patch}, {num_layers} layers, hidden "
        f"{hidden_size}, {len(data.labels)} classes) written to {out}",
        markup=False, highlight=False))
