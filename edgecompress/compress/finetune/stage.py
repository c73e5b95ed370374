"""`edgecompress finetune`: model + dataset -> a trained classifier checkpoint with its dev metrics.

Resolves the model and data, refuses to overwrite a different checkpoint, shows progress, trains
(resuming from the hidden checkpoint of an interrupted run), and evaluates on the dev split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from edgecompress.compress.data.audit import overlap_warning
from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.evaluate import evaluate_classification
from edgecompress.compress.identity import content_digest, identity, is_done
from edgecompress.compress.models.loading import LoadedModel, load_model
from edgecompress.compress.models.modules import check_out_location
from edgecompress.compress.training.progress import TrainingProgress
from edgecompress.compress.training.train import FinetuneConfig, finetune
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, check_replaceable

MANIFEST = "finetune.json"


@dataclass(frozen=True)
class FinetuneRequest:
    model: str
    data: DataRef  # the columns of a user file; no label_map (the model learns the data's)
    out: Path
    config: FinetuneConfig = field(default_factory=FinetuneConfig)
    force: bool = False

    def train_config(self, kind: str) -> FinetuneConfig:
        """The config for a model of `kind`, its learning rate resolved (default_learning_rate)."""
        return self.config.for_model(kind)

    def identity(self, config: FinetuneConfig) -> str:
        """Model and data *content*, columns and config (compress/identity.py)."""
        inputs = {"model": content_digest(self.model), "dataset": content_digest(self.data.spec)}
        settings = {**dataclasses.asdict(config), "text_col": self.data.text_col,
                    "label_col": self.data.label_col}
        if self.data.split_col:  # absent when unused, so earlier teachers keep their identity
            settings["split_col"] = self.data.split_col
        return identity("finetune", settings, inputs)


def _prepare(request: FinetuneRequest):
    import torch

    dataset = request.data.load()
    if dataset.task != "classification":
        raise UserError(f"dataset {dataset.name} is a {dataset.task} set; finetune needs labels")
    train = dataset.split("train")
    if train.labels is None:
        raise UserError(f"dataset {dataset.name} has no labels to fine-tune on")
    for name in ("train", "dev"):
        if not len(dataset.split(name)):
            raise UserError(f"dataset {dataset.name} has an empty {name} split; finetune needs "
                            "train and dev sentences")
    torch.manual_seed(request.config.seed)  # the fresh classification head's weights
    loaded = load_model(request.model, task="classification", num_labels=len(dataset.labels),
                        labels=dataset.labels)
    return dataset, train, _with_labels(loaded, dataset.labels)


def _with_labels(loaded: LoadedModel, labels: tuple[str, ...]) -> LoadedModel:
    """Plain encoders carry label names in their config; check the head matches the data."""
    if loaded.kind != "plain":
        return loaded
    config = loaded.module.config
    if config.num_labels != len(labels):
        raise UserError(f"plain encoder has {config.num_labels} outputs but the dataset has "
                        f"{len(labels)} labels")
    loaded.module.config = dataclasses.replace(config, labels=tuple(labels))
    return dataclasses.replace(loaded, labels=tuple(labels))


def run_finetune(request: FinetuneRequest, console=None) -> dict:
    """Fine-tune per `request`; returns the manifest (with dev metrics). Cached when identical."""
    out = request.out
    check_out_location(out)  # before any training: a file at `out` would fail only at the end
    dataset, train, loaded = _prepare(request)
    config = request.train_config(loaded.kind)
    ident = request.identity(config)
    manifest = is_done(out / MANIFEST, ident)
    if manifest and "dev" in manifest:
        return manifest
    if manifest is None:
        check_replaceable(out, request.force)
        if console is not None and dataset.drawn_splits:
            console.print(dataset.split_line(), markup=False, highlight=False)
        if console is not None:  # test rows the training split holds, said before training
            overlap_warning(dataset, console)
        with TrainingProgress(console, "fine-tune") as on_step:
            manifest = finetune(loaded, list(train.texts), list(train.labels), config, out,
                                identity=ident, on_step=on_step)
    else:  # trained, but interrupted before the dev evaluation
        loaded = load_model(out)
    dev = _dev_metrics(loaded, dataset)
    manifest.update(dataset=dataset.name, labels=list(dataset.labels), dev=dev,
                    split_sizes=dataset.split_sizes(), splits_drawn=dataset.drawn_splits)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _dev_metrics(loaded: LoadedModel, dataset) -> dict:
    from edgecompress.targets import torch_runner

    dev = evaluate_classification(torch_runner(loaded.module), loaded.tokenizer,
                                  dataset.split("dev"), len(dataset.labels))
    return dev.to_json()

