"""The stage functions behind `eval`, `export` and `bench`, shared by the CLI and the demo.

Each writes its result atomically; an output directory that already holds a different export is
refused unless `force` is given, so earlier runs are never silently lost.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.artifacts import (
    MANIFEST,
    export_artifact,
    open_evaluable,
    precheck_export,
    prepare_out_dir,
)
from edgecompress.compress.evaluation.evaluate import evaluate_similarity, split_predictions
from edgecompress.compress.identity import content_digest, identity, is_done, profile_digest, stamp
from edgecompress.compress.models.loading import load_model
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json
from edgecompress.rundir import RunDir


def evaluate_spec(model: str, dataset: str, *, split: str | None = None,
                  reference: str | None = None, tokenizer: Path | None = None, threads: int = 1,
                  max_length: int = 128, text_col: str | None = None,
                  label_col: str | None = None, label_map=(),
                  split_col: str | None = None) -> dict:
    """Evaluate a checkpoint or artifact on a dataset split; returns a JSON-ready dict.

    `split` None: a user file without a `split` column is evaluated whole (split "all"),
    anything else on "test". Labels are matched to the model's by name (compress/data/labels.py).
    """
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.data.labels import align_labels

    for flag, value in (("--max-length", max_length), ("--threads", threads)):
        if value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    data = load_dataset(dataset, text_col=text_col, label_col=label_col, split_col=split_col)
    model_eval = open_evaluable(model, threads=threads, tokenizer=tokenizer)
    if data.task == "similarity" or (model_eval.task == "embedding" and reference):
        return _evaluate_embedding(model, model_eval, data, split, reference, threads,
                                   max_length)
    if model_eval.task != "classification":
        raise UserError(f"{model} is a sentence encoder without a classification head; "
                        f"fine-tune it on {data.name} first (edgecompress finetune), or pass "
                        f"--reference TEACHER for its retrieval against the teacher's")
    data = align_labels(data, model_eval.labels, label_map)
    if split is None and data.drawn_splits:
        split, chosen = "all", data.whole()
    else:
        split = split or "test"
        chosen = data.split(split)
    if not len(chosen):
        raise UserError(f"{data.name}/{split}: the split is empty")
    ref_pred = _reference_predictions(reference, model_eval.labels, chosen, threads, max_length)
    if chosen.labels is None:
        raise UserError(f"{data.name}/{split}: this split has no labels: accuracy needs a "
                        f"labelled dataset")
    from edgecompress.compress.evaluation.evaluate import evaluate_split

    evaluation = evaluate_split(model_eval.runner, model_eval.tokenizer, chosen, data.labels,
                                max_length=max_length, reference_pred=ref_pred)
    metrics = evaluation.record
    if ref_pred is not None:  # the paired difference on the same sentences (stats.py)
        from edgecompress.stats import paired_delta

        paired = paired_delta(np.asarray(chosen.labels), evaluation.pred, ref_pred).to_json()
        metrics.update(delta=paired["delta"], delta_ci95=paired["delta_ci95"], paired=paired)
    from edgecompress.targets import host_info

    return {"model": str(model), "dataset": data.name, "split": split, "task": "classification",
            "label_mapping": data.label_mapping, **metrics, "host": host_info(threads)}


def _evaluate_embedding(model, model_eval, data, split, reference, threads, max_length) -> dict:
    """Spearman / Pearson on a similarity set, and with `reference` (a sentence encoder) the
    nearest-neighbour retrieval against the reference's on the split's sentences."""
    from edgecompress.compress.evaluation.evaluate import evaluate_retrieval

    split = split or "test"
    texts = data.split(split).texts
    result = {"model": str(model), "dataset": data.name, "split": split}
    if data.task == "similarity":
        metrics = evaluate_similarity(model_eval.runner, model_eval.tokenizer, texts,
                                      data.similarity)
        result.update(task="similarity", **metrics.to_json())
    else:
        result["task"] = "embedding"
    if reference:
        ref_eval = open_evaluable(reference, threads=threads)
        if ref_eval.task != "embedding" or model_eval.task != "embedding":
            raise UserError("retrieval against --reference needs two sentence encoders")
        result["retrieval"] = evaluate_retrieval(
            (model_eval.runner, model_eval.tokenizer), (ref_eval.runner, ref_eval.tokenizer),
            texts, max_length=max_length)
        result["reference"] = str(reference)
    return result


def _reference_predictions(reference: str | None, labels: tuple[str, ...], split, threads: int,
                           max_length: int):
    """The reference's argmax on `split`, renumbered to the evaluated model's class ids when
    both name the same classes in another order."""
    import numpy as np

    from edgecompress.compress.data.labels import generic_labels

    if not reference:
        return None
    ref_eval = open_evaluable(reference, threads=threads)
    pred = split_predictions(ref_eval.runner, ref_eval.tokenizer, split, max_length=max_length)
    ref_labels = ref_eval.labels
    if not labels or not ref_labels or tuple(ref_labels) == tuple(labels):
        return pred
    if set(ref_labels) == set(labels):
        return np.asarray([labels.index(ref_labels[i]) for i in range(len(ref_labels))])[pred]
    if generic_labels(ref_labels) or generic_labels(labels):
        if len(ref_labels) == len(labels):
            return pred
    raise UserError(f"reference {reference} predicts ({', '.join(ref_labels)}) but the model "
                    f"predicts ({', '.join(labels)}); agreement needs the same classes")


def export_model(model: str, target: str, out: Path, *, scheme: str | None = None,
                 data: DataRef | None = None, force: bool = False) -> dict:
    """Export + verify `model` for `target` (in `scheme`, default the target's) into `out`;
    returns the artifact manifest. fp32 goes straight through the parity gate; a quantized
    scheme goes through the quantize stage (calibration and the int8 gate on real sentences of
    `data`, which it then needs: UserError without), so `export`, `quantize` and `run` keep the
    same artifacts by the same gate."""
    from edgecompress.targets import load_profile
    from edgecompress.targets.extras import require

    precheck_export(model, out, force=force)  # before calibration data is read or fetched
    profile = load_profile(target)
    spec = profile.scheme_for(scheme)
    require(profile.format, f"target {profile.name}")  # an optional extra (ExecuTorch)
    if spec.quantized:
        from edgecompress.compress.quantize.stage import (
            QuantizeConfig,
            QuantizeRequest,
            run_quantize,
        )

        if data is None:
            raise UserError(f"dataset: scheme {spec.name} calibrates on real sentences; name "
                            f"the dataset")
        config = QuantizeConfig(target=target, scheme=spec.name)
        return run_quantize(QuantizeRequest(model=model, out=out, config=config, data=data,
                                            force=force))
    inputs = {"model": content_digest(model), "profile": profile_digest(profile)}
    ident = identity("export", {"target": profile.name, "scheme": spec.name}, inputs)
    done = is_done(out / MANIFEST, ident)
    if done is not None:
        return done  # the same model, profile and scheme were exported here before
    prepare_out_dir(out, force=force)
    fp32 = dataclasses.replace(profile, scheme=spec.name)
    manifest = stamp(export_artifact(load_model(model), fp32, out, source=str(model)),
                     ident, inputs)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def bench_artifact(artifact: Path, target: str, *, runs: int = 100, warmup: int = 10) -> dict:
    """Benchmark an artifact with `target`'s runtime, threads and shape (separate process)."""
    from edgecompress.targets import bench, load_profile, load_runner
    from edgecompress.targets.extras import require

    profile = load_profile(target)
    if not artifact.exists():
        raise UserError(f"artifact not found: {artifact}")
    require(profile.format, f"target {profile.name}")
    expected = profile.suffix
    if artifact.suffix != expected:
        raise UserError(f"target {profile.name} runs {profile.format} artifacts ({expected}), "
                        f"got {artifact.name}")
    if runs < 1 or warmup < 0:
        raise UserError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    load_runner(artifact)  # a corrupt file fails here with a clear message, not in the child
    return bench(artifact, profile, warmup=warmup, runs=runs)


def bundle_run(run_dir: Path, target: str, out: Path, *, force: bool = False) -> dict:
    """Bundle the artifact that `run_dir` exported for `target`; returns the bundle manifest."""
    from edgecompress.targets import load_profile
    from edgecompress.targets.bundle import make_bundle

    profile = load_profile(target)
    run = RunDir(run_dir)
    folder = run.artifact_dir(profile.name)
    if not run.manifest_file(profile.name).exists():
        known = run.artifact_targets()
        raise UserError(f"{run_dir} has no artifact for target {profile.name} "
                        f"(has: {', '.join(known) or 'none'})")
    return make_bundle(folder, profile, out, force=force)
