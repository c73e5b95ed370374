"""The stage functions behind `eval`, `export` and `bench`, shared by the CLI and the demo.

Each writes its result atomically; an output directory that already holds a different export is
refused unless `force` is given, so earlier runs are never silently lost.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

from edgecompress.compress.core.artifacts import (MANIFEST, export_artifact, open_evaluable,
                                                  prepare_out_dir)
from edgecompress.compress.core.evaluate import (evaluate_classification, evaluate_similarity,
                                             predict)
from edgecompress.compress.core.cache import (content_digest, identity, is_done, profile_digest,
                                              stamp)
from edgecompress.compress.core.models import load_model
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json


def evaluate_spec(model: str, dataset: str, *, split: str = "test", reference: str | None = None,
                  tokenizer: Path | None = None, threads: int = 1, max_length: int = 128,
                  text_col: str | None = None, label_col: str | None = None) -> dict:
    """Evaluate a checkpoint or artifact on a dataset split; returns a JSON-ready dict."""
    from edgecompress.compress.core.data import load_dataset

    data = load_dataset(dataset, text_col=text_col, label_col=label_col)
    model_eval = open_evaluable(model, threads=threads, tokenizer=tokenizer)
    base = {"model": str(model), "dataset": data.name, "split": split}
    if data.task == "similarity":
        docs = data.split(split).texts
        metrics = evaluate_similarity(model_eval.runner, model_eval.tokenizer, docs,
                                      data.similarity)
        return {**base, "task": "similarity", **metrics.to_json()}
    _check_labels(model_eval.labels, data.labels, model)
    texts = data.split(split).texts
    ref_pred = None
    if reference:
        ref_eval = open_evaluable(reference, threads=threads)
        ref_pred = predict(ref_eval.runner, ref_eval.tokenizer, list(texts),
                           max_length=max_length).argmax(axis=1)
    try:
        metrics = evaluate_classification(model_eval.runner, model_eval.tokenizer,
                                          data.split(split), len(data.labels),
                                          reference_pred=ref_pred, max_length=max_length)
    except ValueError as err:
        raise UserError(f"{data.name}/{split}: {err}") from None
    return {**base, "task": "classification", **metrics.to_json()}


def _check_labels(model_labels: tuple[str, ...], data_labels: tuple[str, ...], model) -> None:
    if model_labels and len(model_labels) != len(data_labels):
        raise UserError(f"{model} predicts {len(model_labels)} classes but the dataset has "
                        f"{len(data_labels)} ({', '.join(data_labels)})")


def export_model(model: str, target: str, out: Path, *, scheme: str | None = None,
                 dataset: str = "rt-polarity", force: bool = False) -> dict:
    """Export + verify `model` for `target` (in `scheme`, default the target's) into `out`;
    returns the artifact manifest. fp32 goes straight through the parity gate; a quantized
    scheme goes through the quantize stage (calibration and the int8 gate on real sentences of
    `dataset`), so `export`, `quantize` and `run` keep the same artifacts by the same gate."""
    from edgecompress.targets import load_profile

    profile = load_profile(target)
    spec = profile.scheme_for(scheme)
    if spec.quantized:
        from edgecompress.compress.quantize.stage import (QuantizeConfig, QuantizeRequest,
                                                          run_quantize)

        config = QuantizeConfig(target=target, scheme=spec.name)
        return run_quantize(QuantizeRequest(model=model, out=out, config=config, dataset=dataset,
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

    profile = load_profile(target)
    if not artifact.exists():
        raise UserError(f"artifact not found: {artifact}")
    expected = {"onnx": ".onnx", "tflite": ".tflite"}[profile.format]
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
    folder = run_dir / "artifacts" / profile.name
    if not (folder / MANIFEST).exists():
        known = sorted(p.parent.name for p in run_dir.glob(f"artifacts/*/{MANIFEST}"))
        raise UserError(f"{run_dir} has no artifact for target {profile.name} "
                        f"(has: {', '.join(known) or 'none'})")
    return make_bundle(folder, profile, out, force=force)
