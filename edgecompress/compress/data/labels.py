"""Matching a dataset's labels to a model's classes — by name, the model's `id2label` being the
contract (LoadedModel.labels, an artifact manifest's "labels").

rt-polarity calls its classes (rotten, fresh); a model fine-tuned on it says the same, in its own
order; a model trained elsewhere may say (negative, positive). Ids are matched by name, never by
position, unless the model's names are generic (LABEL_0, LABEL_1: an untrained head) — then by
position, and the result says so. `--label-map` / the recipe key `label_map` renames the
dataset's labels first.
"""

from __future__ import annotations

import dataclasses
import re
import types

from edgecompress.compress.data.datasets import Split, TextDataset
from edgecompress.errors import UserError

# What an untrained head or a plain encoder calls its classes: names that carry no meaning.
GENERIC_LABEL = re.compile(r"(LABEL_)?\d+")


def generic_labels(labels) -> bool:
    """True when every name is LABEL_i or a bare number (an untrained head's defaults)."""
    return bool(labels) and all(GENERIC_LABEL.fullmatch(str(name)) for name in labels)


def parse_label_map(text: str | None, what: str = "--label-map") -> tuple[tuple[str, str], ...]:
    """'old=new,old2=new2' -> (("old", "new"), ...); UserError naming `what` when malformed."""
    pairs = []
    for part in (text or "").split(","):
        old, sep, new = (x.strip() for x in part.partition("="))
        if not sep or not old or not new:
            raise UserError(f"{what}: expected dataset=model label pairs separated by commas "
                            f"(e.g. fresh=positive,rotten=negative), got {part.strip()!r}")
        if old in dict(pairs):
            raise UserError(f"{what}: label {old!r} is mapped twice")
        pairs.append((old, new))
    return tuple(pairs)


def align_labels(dataset: TextDataset, model_labels, label_map=()) -> TextDataset:
    """`dataset` with its label ids renumbered to the model's classes (`model_labels[i]` names
    class id i), and `label_mapping` saying how.

    By name when every dataset label (renamed by `label_map`, old -> new) is a model label; by
    position only when the model's labels are generic (LABEL_i / "i"), no map is given and the
    counts match, or when the model names no labels. Raises UserError listing both label sets
    otherwise, and for a map naming a label the dataset does not have.
    """
    mapping = dict(label_map)
    if dataset.task != "classification" or not dataset.labels:
        if mapping:
            raise UserError(f"--label-map given, but dataset {dataset.name} has no class labels")
        return dataset
    unknown = sorted(set(mapping) - set(dataset.labels))
    if unknown:
        raise UserError(f"--label-map names {unknown[0]!r}, which is not a label of dataset "
                        f"{dataset.name} (its labels: {', '.join(dataset.labels)})")
    renamed = [mapping.get(name, name) for name in dataset.labels]
    model_labels = tuple(str(name) for name in model_labels)
    if not model_labels:
        return dataclasses.replace(dataset, label_mapping="by position (the model names no "
                                                          "labels)")
    if set(renamed) <= set(model_labels):
        ids = [model_labels.index(name) for name in renamed]
        splits = {name: Split(s.texts, None if s.labels is None
                              else tuple(ids[y] for y in s.labels))
                  for name, s in dataset.splits.items()}
        how = "by name (--label-map)" if mapping else "by name"
        return dataclasses.replace(dataset, labels=model_labels, label_mapping=how,
                                   splits=types.MappingProxyType(splits))
    if generic_labels(model_labels) and not mapping and len(model_labels) == len(renamed):
        return dataclasses.replace(dataset, label_mapping="by position (model labels are "
                                                          "generic)")
    said = (f"dataset {dataset.name} labels ({', '.join(dataset.labels)}) are not the "
            f"model's labels ({', '.join(model_labels)})")
    if len(dataset.labels) > len(model_labels):  # no renaming gives the model more classes
        raise UserError(f"{said}: the model predicts {len(model_labels)} classes, the dataset "
                        f"has {len(dataset.labels)}; evaluate it on data with its classes")
    example = ",".join(f"{d}={m}" for d, m in zip(dataset.labels, model_labels))
    raise UserError(f"{said}; pass --label-map dataset=model,... (recipe key label_map), "
                    f"e.g. --label-map {example}")
