"""What a model takes: named input arrays, text (`input_ids`, `attention_mask`, int (B, S)) or image
(`pixel_values`, float32 (B, C, H, W)).

A module says which by its `input_names` attribute (compress/models/modules.py,
compress/models/vision.py); a sample is
a dict of those names. Exporters, runtimes, quantizers and bench read the modality from the names
here rather than asking which model family they hold.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TEXT_INPUTS = ("input_ids", "attention_mask")
IMAGE_INPUTS = ("pixel_values",)
PAD_ID = 0


def module_inputs(module) -> tuple[str, ...]:
    """The input names `module.forward` takes, in order (text unless the module says otherwise)."""
    return tuple(getattr(module, "input_names", TEXT_INPUTS))


def sample_inputs(sample: Mapping) -> tuple[str, ...]:
    """The input names a sample holds: IMAGE_INPUTS or TEXT_INPUTS; ValueError for neither."""
    for names in (IMAGE_INPUTS, TEXT_INPUTS):
        if all(name in sample for name in names):
            return names
    raise ValueError(f"sample lacks inputs: expected {', '.join(TEXT_INPUTS)} or "
                     f"{', '.join(IMAGE_INPUTS)}, got {', '.join(sample) or 'nothing'}")


def is_image(names) -> bool:
    return tuple(names) == IMAGE_INPUTS


def fit_sample(sample: Mapping, seq: int | None = None) -> dict[str, np.ndarray]:
    """Just the model inputs: text as int64 (B, S) cut to `seq` when given, images as float32."""
    names = sample_inputs(sample)
    if is_image(names):
        return {"pixel_values": np.asarray(sample["pixel_values"], dtype=np.float32)}
    return {n: np.asarray(sample[n], dtype=np.int64)[:, :seq] for n in names}


def pad_rows(sample: Mapping, batch: int, seq: int | None = None) -> dict[str, np.ndarray]:
    """Inputs of exactly `batch` rows (the real rows cycled or cut); text is also padded to `seq`
    tokens with pad id 0 / mask 0 (masked keys: outputs unchanged)."""
    sample = fit_sample(sample)
    rows = np.resize(np.arange(len(next(iter(sample.values())))), batch)  # cycles the real rows
    out = {name: array[rows] for name, array in sample.items()}
    if is_image(out) or seq is None:
        return out
    pad = ((0, 0), (0, seq - out["input_ids"].shape[1]))
    return {"input_ids": np.pad(out["input_ids"], pad, constant_values=PAD_ID),
            "attention_mask": np.pad(out["attention_mask"], pad)}


def split_rows(sample: Mapping) -> list[dict[str, np.ndarray]]:
    """One feed per row, each (1, ...)."""
    n = len(next(iter(sample.values())))
    return [{name: np.asarray(array)[row:row + 1] for name, array in sample.items()}
            for row in range(n)]


def row_count(sample: Mapping) -> int:
    return len(next(iter(sample.values())))
