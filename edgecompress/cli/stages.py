"""The stage commands: finetune, prune, distill, quantize and export. Each parses its options,
calls the library's stage and prints the manifest's summary (or JSON).

A stage's config options are not written here: they are generated from the config's fields
(cli/options.py), so a flag, its default, help and choices are the field's. The request-level
options (--out, --dataset, --force, --json, --config, the columns, --label-map) are declared
once in cli/options.py.
"""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, emit, guarded
from edgecompress.cli.options import (
    AS_JSON,
    CONFIG,
    DATASET,
    DATASET_OR_RECORDED,
    DEV_SIMILARITY,
    EVALUATE,
    FORCE,
    GATE,
    GATE_RUNS,
    LABEL_COL,
    LABEL_MAP,
    QAT_SCHEME,
    QAT_TARGET,
    SPLIT_COL,
    STUDENT,
    TEACHER,
    TEXT_COL,
    TRAIN_SIZE,
    UNLABELED,
    Given,
    config_flags,
    flag,
    read_table,
    with_flags,
)
from edgecompress.compress.distill.config import DistillConfig
from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.quantize.config import QuantizeConfig
from edgecompress.compress.training.config import FinetuneConfig
from edgecompress.errors import UserError

MODEL = typer.Argument(..., help="Checkpoint directory or built-in name (minilm-l6).")
# the dataset a built-in model was made with, for commands that default to a model's own data
BUILTIN_DATASETS = {"minilm-l6": "rt-polarity"}
# the records a checkpoint made by a stage carries, each naming its dataset ("dataset")
RECORDS = ("distill.json", "prune.json", "finetune.json")


def data_ref(spec: str, text_col, label_col, split_col, label_map: str | None = None):
    """The DataRef of a command's --dataset, column options and --label-map."""
    from edgecompress.compress.data.dataref import DataRef
    from edgecompress.compress.data.labels import parse_label_map

    return DataRef(spec, text_col, label_col, parse_label_map(label_map) if label_map else (),
                   split_col)


def recorded_dataset(model: str) -> str | None:
    """The registered dataset `model` was made with: rt-polarity for the built-in minilm-l6,
    else the `dataset` its own record (distill.json / prune.json / finetune.json) names; None
    when there is none (a user's model, or one made from a user's file)."""
    import json

    from edgecompress.compress.data.datasets import list_datasets

    if model in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[model]
    known = {info.name for info in list_datasets()}
    for record in RECORDS:
        path = Path(model) / record
        try:
            dataset = json.loads(path.read_text(encoding="utf-8")).get("dataset")
        except (OSError, ValueError, AttributeError):
            continue
        if dataset in known:
            return dataset
    return None


def dataset_for(model: str, given: str | None) -> str:
    """--dataset, or the dataset `model` was made with; UserError (exit 2) naming --dataset when
    neither exists: no command calibrates or evaluates a user's model on data it did not name."""
    if given is not None:
        return given
    recorded = recorded_dataset(model)
    if recorded is None:
        raise UserError(f"--dataset is needed: {model} records no dataset it was made with "
                        f"(only minilm-l6 and checkpoints made from a registered dataset "
                        f"default to it)")
    return recorded


def _stage_config(stage: str, given: Given, config: Path | None):
    """The stage's frozen config: the `--config` file's table (if any), the typed flags over
    it; a message names the flag, or the file and its key."""
    from edgecompress.compress.pipeline.recipe import stage_config

    settings = given.table(read_table(config, stage) if config is not None else {})
    return stage_config(str(config) if config is not None else "", stage, settings,
                        given.key(stage))


@guarded
@with_flags(config_flags(FinetuneConfig))
def finetune(
    model: str = MODEL, dataset: str = DATASET,
    out: Path = typer.Option(..., help="Output checkpoint directory (gets finetune.json)."),
    text_col: str | None = TEXT_COL, label_col: str | None = LABEL_COL,
    split_col: str | None = SPLIT_COL, force: bool = FORCE,
    as_json: bool = AS_JSON, config: Path | None = CONFIG, *, given: Given,
) -> None:
    """Fine-tune an encoder with a classification head; resumes after interruption."""
    from edgecompress.compress.finetune.stage import FinetuneRequest, run_finetune

    train = _stage_config("finetune", given, config).train
    request = FinetuneRequest(model=model, data=data_ref(dataset, text_col, label_col, split_col),
                              out=out, config=train, force=force)
    manifest = run_finetune(request, console)
    dev = manifest["dev"]
    emit(manifest, as_json, lambda m: [
        f"fine-tuned in {m['seconds']:.0f} s of training — dev accuracy {dev['accuracy']:.2%} "
        f"[{dev['ci95'][0]:.2%}, {dev['ci95'][1]:.2%}] (n={dev['n']}) — written to {out}"])


@guarded
@with_flags(config_flags(PruneConfig))
def prune(
    model: str = MODEL,
    out: Path = typer.Option(..., help="Output checkpoint directory (gets prune.json)."),
    dataset: str | None = DATASET_OR_RECORDED,
    text_col: str | None = TEXT_COL, label_col: str | None = LABEL_COL,
    split_col: str | None = SPLIT_COL, label_map: str | None = LABEL_MAP,
    evaluate: bool = EVALUATE, gate: str | None = GATE, gate_runs: int = GATE_RUNS,
    force: bool = FORCE, as_json: bool = AS_JSON, config: Path | None = CONFIG, *,
    given: Given,
) -> None:
    """Remove heads, FFN neurons, layers, vocabulary; report what it gained (prune.json)."""
    from edgecompress.compress.models.loading import check_checkpoint

    prune_config = _stage_config("prune", given, config)
    check_checkpoint(model)  # a missing model says so before --dataset does
    data = None
    if prune_config.needs_data or evaluate or dataset is not None:
        data = data_ref(dataset_for(model, dataset), text_col, label_col, split_col, label_map)
    from edgecompress.compress.prune.stage import PruneRequest, run_prune, summary_lines

    manifest = run_prune(PruneRequest(model=model, out=out, config=prune_config, data=data,
                                      evaluate=evaluate, gate=gate, gate_runs=gate_runs,
                                      force=force))
    emit(manifest, as_json, summary_lines)


@guarded
@with_flags(config_flags(DistillConfig, defaults=DistillConfig()))
def distill(
    teacher: str = TEACHER, student: str = STUDENT,
    dataset: str = DATASET,
    text_col: str | None = TEXT_COL, label_col: str | None = LABEL_COL,
    split_col: str | None = SPLIT_COL, label_map: str | None = LABEL_MAP,
    out: Path = typer.Option(..., help="Output student checkpoint directory (gets "
                                       "distill.json)."),
    train_size: int | None = TRAIN_SIZE, unlabeled: Path | None = UNLABELED,
    qat_target: str | None = QAT_TARGET, qat_scheme: str | None = QAT_SCHEME,
    dev_similarity: str | None = DEV_SIMILARITY, force: bool = FORCE,
    as_json: bool = AS_JSON, config: Path | None = CONFIG, *, given: Given,
) -> None:
    """Distill a teacher into a smaller student; resumes after interruption (distill.json)."""
    # the recipe's [distill] keys besides the losses: typed ones go over the file's
    for name, value in (("train_size", train_size), ("qat_target", qat_target),
                        ("qat_scheme", qat_scheme)):
        if value is not None:
            given.values[name], given.flags[name] = value, flag(name)
    stage = _stage_config("distill", given, config)
    from edgecompress.cli.distill_summary import summary_lines
    from edgecompress.compress.distill.distributed import World
    from edgecompress.compress.distill.stage import DistillRequest, run_distill

    request = DistillRequest(teacher=teacher, student=student,
                             data=data_ref(dataset, text_col, label_col, split_col, label_map),
                             out=out, config=stage.distill, unlabeled=unlabeled,
                             qat_target=stage.qat_target, qat_scheme=stage.qat_scheme,
                             train_size=stage.train_size, force=force,
                             dev_similarity=dev_similarity)
    manifest = run_distill(request, None if as_json else console)
    if World.launched_main():  # under torchrun, rank 0 speaks for all
        emit(manifest, as_json, summary_lines)


@guarded
@with_flags(config_flags(QuantizeConfig))
def quantize(
    model: str = MODEL,
    out: Path = typer.Option(..., help="Output directory for the artifact."),
    dataset: str | None = DATASET_OR_RECORDED,
    text_col: str | None = TEXT_COL, label_col: str | None = LABEL_COL,
    split_col: str | None = SPLIT_COL, label_map: str | None = LABEL_MAP,
    force: bool = FORCE, as_json: bool = AS_JSON, *, given: Given,
) -> None:
    """Quantize for a target (calibrated, verified), with fallback, blame and preflight."""
    from edgecompress.compress.config import build
    from edgecompress.compress.evaluation.artifacts import precheck_export
    from edgecompress.targets import load_profile

    config = build(QuantizeConfig, given.values, lambda f: given.flags.get(f) or flag(f))
    load_profile(config.target).scheme_for(config.scheme)  # these say so before --dataset does
    precheck_export(model, out, force=force)
    data = data_ref(dataset_for(model, dataset), text_col, label_col, split_col, label_map)
    from edgecompress.compress.quantize.stage import QuantizeRequest, run_quantize, summary_lines

    manifest = run_quantize(QuantizeRequest(model=model, out=out, config=config, data=data,
                                            force=force))
    emit(manifest, as_json, summary_lines)


@guarded
@with_flags(config_flags(QuantizeConfig, only=("target", "scheme")))
def export(
    model: str = MODEL,
    out: Path = typer.Option(..., help="Output directory for the artifact."),
    dataset: str | None = DATASET_OR_RECORDED,
    text_col: str | None = TEXT_COL, label_col: str | None = LABEL_COL,
    split_col: str | None = SPLIT_COL, force: bool = FORCE, as_json: bool = AS_JSON, *,
    given: Given,
) -> None:
    """Export to the target's format, verify parity against torch, keep only if it passes.
    A quantized scheme calibrates on --dataset (the model's own by default)."""
    from edgecompress.compress.evaluation.artifacts import precheck_export
    from edgecompress.targets import load_profile

    target, scheme = given.values["target"], given.values.get("scheme")
    quantized = load_profile(target).scheme_for(scheme).quantized
    precheck_export(model, out, force=force)  # a missing model says so before --dataset does
    data = (data_ref(dataset_for(model, dataset), text_col, label_col, split_col)
            if quantized or dataset is not None else None)
    from edgecompress.compress.evaluation.artifacts import difference_words, parity_words
    from edgecompress.compress.pipeline.commands import export_model


    manifest = export_model(model, target, out, scheme=scheme, data=data, force=force)
    parity = manifest["parity"]
    emit(manifest, as_json, lambda m: [
        f"{m['target']}: {out / m['artifact']} ({m['size_bytes'] / 1e6:.1f} MB), parity "
        f"{difference_words(parity)}, {parity_words(parity)}"])
