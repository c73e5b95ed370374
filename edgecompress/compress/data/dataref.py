"""A dataset as a recipe or a command names it: the registry name or file, which of the file's
columns hold the text and the label, and how its label names map to the model's.

Every stage of a run reads its data through one `DataRef`, so the columns and the label map a
recipe gives reach fine-tuning, pruning, distillation, quantization and evaluation alike, and
labels are always matched to the model by name (compress/data/labels.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecompress.compress.data.datasets import TextDataset, load_dataset


@dataclass(frozen=True)
class DataRef:
    spec: str  # registry name, .csv / .jsonl path, or "train=a.csv,dev=b.csv,test=c.csv"
    text_col: str | None = None  # None: "text"
    label_col: str | None = None  # None: "label" when the file has one
    label_map: tuple[tuple[str, str], ...] = ()  # dataset label -> model label
    split_col: str | None = None  # None: "split" when the file has one (else drawn 80/10/10)

    def load(self) -> TextDataset:
        """The dataset with its own label ids (UserError for bad names, files, columns)."""
        return load_dataset(self.spec, text_col=self.text_col, label_col=self.label_col,
                            split_col=self.split_col)

    def for_model(self, labels) -> TextDataset:
        """The dataset with its label ids renumbered to a model's classes, by name."""
        return self.align(self.load(), labels)

    def align(self, dataset: TextDataset, labels) -> TextDataset:
        """`dataset` (this ref, already loaded) renumbered to a model's classes, by name."""
        from edgecompress.compress.data.labels import align_labels

        return align_labels(dataset, labels, self.label_map)

    def options(self) -> dict:
        """The settings besides the spec, only those given (so plain names keep their
        identities): {"text_col", "label_col", "split_col", "label_map"}."""
        found = {"text_col": self.text_col, "label_col": self.label_col,
                 "split_col": self.split_col, "label_map": [list(pair) for pair in self.label_map]}
        return {key: value for key, value in found.items() if value}
