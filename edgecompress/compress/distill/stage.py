"""`edgecompress distill`: teacher + student spec + dataset -> a distilled student checkpoint with
`distill.json` (resolved config, layer map, what was skipped and why, dev history, test accuracy
of student and teacher with 95 % CIs and agreement, sizes, wall time).

A rerun of the same request returns the cached manifest; a run interrupted (kill -9) or stopped
by `max_minutes` resumes from its hidden checkpoint `.<out>.ckpt` next to the output.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.distill.config import DistillConfig
from edgecompress.compress.distill.distributed import World
from edgecompress.compress.distill.embedding import (
    EmbeddingDev,
    embed,
    embedding_texts,
    heldout_embedding_metrics,
    similarity_dev,
    unlabeled_texts,
)
from edgecompress.compress.distill.loop import Run, TrainData, best_dir, distill_train
from edgecompress.compress.distill.qat import prepare_qat, qat_config_for, strip_fake_quant
from edgecompress.compress.distill.students import (
    build_student,
    check_compatible,
    check_spec,
    describe,
    make_projections,
    resolve_plan,
)
from edgecompress.compress.identity import content_digest, identity, is_done
from edgecompress.compress.models.loading import LoadedModel, load_model, save_model
from edgecompress.compress.models.modules import check_out_location
from edgecompress.compress.training.progress import TrainingProgress
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_directory, atomic_write_json, check_replaceable

MANIFEST = "distill.json"


@dataclass(frozen=True)
class DistillRequest:
    teacher: str
    student: str  # checkpoint dir, "layers:1,3,5" or "fresh:layers=3,hidden=192,..."
    data: DataRef  # label_map: dataset label -> teacher label (by name)
    out: Path
    config: DistillConfig = field(default_factory=DistillConfig)
    unlabeled: Path | None = None  # extra text, labelled by the teacher
    qat_target: str | None = None  # train with fake quantization matching this target's int8
    qat_scheme: str | None = None
    train_size: int | None = None  # a seeded sample of the train split; None = all of it
    evaluate_test: bool = True
    force: bool = False
    dev_similarity: str | None = None  # sentence encoders: select the student on this set

    def identity(self) -> str:
        """Teacher, student, data (and extra text) by content, plus the config and settings
        (compress/identity.py)."""
        inputs = {"teacher": content_digest(self.teacher), "student": content_digest(self.student),
                  "dataset": content_digest(self.data.spec)}
        if self.unlabeled is not None:
            inputs["unlabeled"] = content_digest(self.unlabeled)
        # max_minutes stops a run, it does not change where it goes: a larger budget resumes
        config = {k: v for k, v in self.config.to_json().items() if k != "max_minutes"}
        settings = {"config": config, "qat_target": self.qat_target,
                    "qat_scheme": self.qat_scheme, "train_size": self.train_size}
        settings.update(self.data.options())  # absent when unused: earlier identities hold
        if self.dev_similarity is not None:
            settings["dev_similarity"] = self.dev_similarity
        return identity("distill", settings, inputs)


def run_distill(request: DistillRequest, console=None) -> dict:
    """Distill per `request` into `request.out`; returns the manifest (also distill.json).

    Raises UserError for bad input: different vocabularies or label sets, a layer map naming
    missing layers, an unknown student spec, an output directory holding something else.
    Under torchrun every rank trains its shard of each batch and rank 0 alone writes
    (distributed.py); the others return the same manifest.
    """
    began = time.perf_counter()
    check_out_location(request.out)
    check_spec(request.student)
    fingerprint = request.identity()
    cached = _cached(request, fingerprint)
    if cached is not None:
        return cached
    return _make(request, fingerprint, console, began)


def make_distill(request: DistillRequest, console=None) -> dict:
    """`run_distill` without the "already done?" check, for the run loop that made it once for
    the step (pipeline/runs.step_state). A half-trained `.ckpt` still resumes (training resume,
    not a done check: compress/identity.py)."""
    began = time.perf_counter()
    check_out_location(request.out)
    check_spec(request.student)
    if request.out.exists() and any(request.out.iterdir()):
        check_replaceable(request.out, request.force)
    return _make(request, request.identity(), console, began)


def _make(request: DistillRequest, fingerprint: str, console, began: float) -> dict:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # measured 3.7x faster steps (docs/design)
    world = World.from_env()
    try:
        return _distill(request, fingerprint, world, console if world.main else None, began)
    finally:
        world.close()


def _distill(request: DistillRequest, fingerprint: str, world: World, console,
             began: float) -> dict:
    teacher = load_model(request.teacher)  # a classifier, or a sentence encoder (embedding)
    source = (_embedding_source(request, teacher) if teacher.task == "embedding"
              else _classification_source(request, teacher))
    data = source.data
    torch.manual_seed(request.config.train.seed)  # fresh students and projections
    student = build_student(request.student, teacher)
    check_compatible(teacher, student.loaded)
    plan = resolve_plan(teacher, student, request.config)
    before = describe(student.loaded)
    projections = make_projections(teacher, student.loaded, plan)
    qat = _prepare_qat(request, student.loaded)
    ckpt = request.out.parent / f".{request.out.name}.ckpt"
    run = Run(teacher, student.loaded, projections, plan, _train_config(request, qat), data, ckpt,
              source.dev, request.identity(), world, source.embedding_dev)
    if console is not None:  # only now: every check above may still refuse in one line
        for line in [f"note: {note}" for note in plan.notes] + source.lines:
            console.print(line, markup=False, highlight=False)
    with TrainingProgress(console, "distill") as on_step:
        result = distill_train(run, on_step)
    if qat is not None:
        strip_fake_quant(student.loaded.module)
    manifest = {"stage": "distill", "fingerprint": fingerprint, "identity": fingerprint,
                "teacher": request.teacher,
                "student_spec": request.student, "student_origin": student.origin,
                **source.info, "task": teacher.task,
                "config": request.config.to_json(), "layer_map": [list(p) for p in
                                                                  (request.config.layer_map
                                                                   or student.layer_map)],
                "plan": {"hidden_pairs": [list(p) for p in plan.hidden_pairs],
                         "attention_pairs": [list(p) for p in plan.attention_pairs],
                         "notes": list(plan.notes)},
                "qat": qat, "n_train": len(data.texts), "student": before,
                "processes": world.size,
                "teacher_shape": describe(teacher), **result}
    if not world.main:
        return manifest
    if request.evaluate_test and result["stopped"] != "max-minutes":
        manifest["test"] = source.test(teacher, student.loaded)
    manifest["wall_seconds"] = round(time.perf_counter() - began, 2)
    _write(request, student.loaded, manifest, ckpt)
    return manifest


def _cached(request: DistillRequest, fingerprint: str) -> dict | None:
    """The finished manifest of an identical run at `out`; UserError if `out` holds another."""
    out = request.out
    if not out.exists() or not any(out.iterdir()):
        return None
    manifest = is_done(out / MANIFEST, fingerprint)
    if manifest is not None:
        return None if manifest.get("stopped") == "max-minutes" else manifest
    check_replaceable(out, request.force)
    return None


@dataclass(frozen=True)
class _Source:
    """What a run trains and is judged on: training data, its dev set (labelled, or a sentence
    encoder's), manifest facts, console lines, and the held-out metrics of the end."""

    data: TrainData
    dev: tuple | None
    embedding_dev: EmbeddingDev | None
    info: dict
    lines: list[str]
    test: Callable[[LoadedModel, LoadedModel], dict]


def _classification_source(request: DistillRequest, teacher: LoadedModel) -> _Source:
    dataset, data, dev = _data(request, teacher)
    info = {"dataset": dataset.name, "labels": list(dataset.labels),
            "label_mapping": dataset.label_mapping, "split_sizes": dataset.split_sizes(),
            "splits_drawn": dataset.drawn_splits}
    lines = [dataset.split_line()] if dataset.drawn_splits else []
    if request.config.transfer.active:
        data, info["transfer"] = _with_transfer(request, teacher, dataset, data)
        lines.append(_transfer_line(info["transfer"]))
    return _Source(data, dev, None, info, lines, lambda t, s: heldout_metrics(t, s, dataset))


def _with_transfer(request: DistillRequest, teacher: LoadedModel, dataset,
                   data: TrainData) -> tuple[TrainData, dict]:
    """`data` plus the transfer set built from its labelled rows (transfer.py), whose rows carry
    the label SOFT_ONLY; and the set's manifest facts."""
    from edgecompress.compress.distill.losses import SOFT_ONLY
    from edgecompress.compress.distill.transfer import (
        build_transfer_set,
        heldout_rows,
        input_embedding,
        token_vocab,
    )

    labelled = [text for text, label in zip(data.texts, data.labels) if label >= 0]
    try:
        embedding = input_embedding(teacher.module)
    except ValueError as err:
        raise UserError(str(err)) from None
    found = build_transfer_set(labelled, heldout_rows(dataset), token_vocab(teacher.tokenizer),
                               embedding, request.config.transfer, request.config.train.seed)
    return (TrainData(data.texts + found.texts, data.labels + (SOFT_ONLY,) * len(found.texts)),
            found.info)


def _transfer_line(info: dict) -> str:
    held = f", {info['dropped_heldout']} equal to a dev/test row dropped" \
        if info["dropped_heldout"] else ""
    return (f"transfer set: {info['rows']:,} augmented rows ({info['augment']} per training "
            f"sentence{held}), taught by the teacher's soft targets only")


def _embedding_source(request: DistillRequest, teacher: LoadedModel) -> _Source:
    """Unlabelled text for a sentence-encoder teacher (embedding.py); dev: Spearman on
    `dev_similarity` if given, else the mean cosine to the teacher on held-out text."""
    from edgecompress.compress.evaluation.evaluate import DEFAULT_MAX_LENGTH

    seed, max_length = request.config.train.seed, request.config.train.max_length
    if request.config.transfer.active:
        raise UserError("transfer.augment applies to a classifier teacher; a sentence "
                        "encoder already learns every row from the teacher's embedding")
    name, train, dev, test = embedding_texts(request.data.spec, request.unlabeled, seed,
                                             request.data)
    if request.train_size is not None and request.train_size < len(train):
        train = random.Random(seed).sample(train, request.train_size)
    similarity = similarity_dev(request.dev_similarity) if request.dev_similarity else None
    embedding_dev = similarity or (EmbeddingDev(tuple(dev), teacher=embed(teacher, dev, max_length))
                                   if dev else None)
    info = {"dataset": name, "labels": [], "split_sizes": {"train": len(train), "dev": len(dev),
                                                          "test": len(test)},
            "dev_similarity": request.dev_similarity}
    return _Source(TrainData(tuple(train), (-1,) * len(train)), None, embedding_dev, info, [],
                   lambda t, s: heldout_embedding_metrics(t, s, test, DEFAULT_MAX_LENGTH,
                                                          similarity))


def _data(request: DistillRequest, teacher: LoadedModel):
    """(dataset, training data incl. unlabelled text, dev (texts, labels) or None)."""
    from edgecompress.compress.data.datasets import sample_texts

    dataset = request.data.load()
    if dataset.task != "classification" or not dataset.labels:
        raise UserError(f"dataset {dataset.name} has no class labels to distill on")
    dataset = request.data.align(dataset, teacher.labels)
    train = dataset.split("train")
    if not len(train):
        raise UserError(f"dataset {dataset.name} has an empty train split")
    if request.train_size is not None:
        train = sample_texts(train, min(request.train_size, len(train)),
                             seed=request.config.train.seed)
    texts, labels = list(train.texts), list(train.labels or [-1] * len(train))
    extra = unlabeled_texts(request.unlabeled) if request.unlabeled else []
    try:
        data = TrainData(tuple(texts + extra), tuple(labels + [-1] * len(extra)))
    except ValueError as err:
        raise UserError(f"dataset {dataset.name}: {err}") from None
    dev_split = dataset.splits.get("dev")
    dev = None
    if dev_split is not None and len(dev_split) and dev_split.labels is not None:
        dev = (tuple(dev_split.texts), tuple(dev_split.labels))
    return dataset, data, dev


def _train_config(request: DistillRequest, qat: dict | None) -> DistillConfig:
    """The request's config; QAT trains in float32 (fake quantization emulates int8 rounding
    that bf16 autocast would blur)."""
    if qat is None:
        return request.config
    train = dataclasses.replace(request.config.train, precision="fp32")
    return dataclasses.replace(request.config, train=train)


def _prepare_qat(request: DistillRequest, student: LoadedModel) -> dict | None:
    if request.qat_target is None:
        return None
    from edgecompress.targets import load_profile

    profile = load_profile(request.qat_target)
    try:
        config = qat_config_for(profile, request.qat_scheme)
    except ValueError as err:
        raise UserError(str(err)) from None
    wrapped = prepare_qat(student.module, config)
    return {"target": profile.name, **config.to_json(), "linear_layers": wrapped}


def heldout_metrics(teacher: LoadedModel, student: LoadedModel, dataset) -> dict:
    """Test accuracy (95 % CI) of student and teacher, and the student's agreement with it."""
    from edgecompress.compress.evaluation.evaluate import classification_metrics, split_predictions
    from edgecompress.targets import torch_runner

    split = dataset.split("test")
    truth, classes = np.asarray(split.labels), len(dataset.labels)
    preds = {name: split_predictions(torch_runner(m.module), m.tokenizer, split)
             for name, m in (("teacher", teacher), ("student", student))}
    teacher_metrics = classification_metrics(truth, preds["teacher"], classes)
    student_metrics = classification_metrics(truth, preds["student"], classes,
                                             reference_pred=preds["teacher"])
    return {"split": "test", "student": student_metrics.to_json(),
            "teacher": teacher_metrics.to_json(),
            "gap": teacher_metrics.accuracy - student_metrics.accuracy}


def _write(request: DistillRequest, student: LoadedModel, manifest: dict, ckpt: Path) -> None:
    with atomic_directory(request.out) as tmp:
        save_model(student, tmp)
        atomic_write_json(tmp / MANIFEST, manifest)
    if manifest["stopped"] != "max-minutes":  # keep the checkpoint so a rerun continues
        shutil.rmtree(ckpt, ignore_errors=True)
        shutil.rmtree(best_dir(ckpt), ignore_errors=True)

