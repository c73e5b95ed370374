"""The per-target stages of a run — export (quantize + verify), eval, bench — and the fp32
teacher's evaluation, registered in the same stage table as the training stages. Where each
writes (artifacts/<target>/{manifest,eval,bench}.json, teacher/eval.json) is edgecompress/rundir.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.pipeline.stages import Context, StageOutput, stage
from edgecompress.fsutil import atomic_write_bytes, atomic_write_json
from edgecompress.rundir import BENCH_FILE, EVAL_FILE, MANIFEST_FILE, PREDICTIONS_FILE

EVAL_MAX_LENGTH = 128  # tokens per sentence when evaluating; the fixed-shape targets' seq_len


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    max_length: int = EVAL_MAX_LENGTH


@dataclass(frozen=True)
class BenchConfig:
    target: str
    runs: int = 100
    warmup: int = 10

    def __post_init__(self) -> None:
        if self.runs < 1 or self.warmup < 0:
            raise ValueError(f"bench runs must be >= 1 and warmup >= 0, got {self.runs} and "
                             f"{self.warmup}")


def target_profile(config):
    """The profile a QuantizeConfig / BenchConfig names, with its scheme in force."""
    import dataclasses

    from edgecompress.targets import load_profile

    profile = load_profile(config.target)
    scheme = getattr(config, "scheme", None)
    return profile if scheme in (None, profile.scheme) else dataclasses.replace(profile,
                                                                                scheme=scheme)


def _save_predictions(path: Path, pred: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, pred)
    atomic_write_bytes(path, buffer.getvalue())


def reference_predictions(eval_json: Path) -> np.ndarray:
    """The predictions an eval step saved beside its eval.json."""
    return np.load(eval_json.parent / PREDICTIONS_FILE)


@stage("export", reads_data=True, uses_profile=True)
def export_stage(inputs, config, ctx: Context) -> StageOutput:
    """Export one target: fp32 straight through the parity gate; quantized schemes through the
    quantize stage (calibration on real sentences, fallback when max_drop is set, blame,
    preflight). `config` is a QuantizeConfig; the output is the artifact file."""
    import shutil

    from edgecompress.compress.evaluation.artifacts import export_artifact
    from edgecompress.compress.models.loading import load_model
    from edgecompress.compress.quantize.stage import QuantizeRequest, make_quantize
    folder = ctx.stage_dir
    if folder.exists():
        shutil.rmtree(folder)  # the run loop found it not done: made from another input or config
    profile = target_profile(config)
    if profile.scheme == "fp32" and config.max_drop is None:
        manifest = export_artifact(load_model(inputs["model"]), profile, folder,
                                   source=str(inputs["model"]))
    else:
        manifest = make_quantize(QuantizeRequest(model=str(inputs["model"]), out=folder,
                                                config=config, force=True,
                                                **ctx.data.request_fields()))
    parity = manifest["parity"]
    return StageOutput(folder / manifest["artifact"],
                       {"scheme": manifest["scheme"], "size_bytes": manifest["size_bytes"],
                        "parity_max_abs_diff": parity["max_abs_diff"],
                        "parity_agreement": parity["agreement"]})


@stage("eval", reads_data=True)
def eval_stage(inputs, config: EvalConfig, ctx: Context) -> StageOutput:
    """Accuracy of a checkpoint or artifact on the split, with agreement (and the paired delta)
    against the reference predictions when `inputs` has a `reference` eval.json."""
    from edgecompress.compress.evaluation.artifacts import open_evaluable
    from edgecompress.compress.evaluation.evaluate import classification_metrics, split_predictions

    model = open_evaluable(inputs["model"], threads=1)
    split = ctx.data.for_model(model.labels).split(config.split)  # class ids by name
    pred = split_predictions(model.runner, model.tokenizer, split, max_length=config.max_length)
    reference = inputs.get("reference")
    ref_pred = reference_predictions(Path(reference)) if reference else None
    truth = np.asarray(split.labels)
    metrics = classification_metrics(truth, pred, max(len(model.labels), int(truth.max()) + 1),
                                     reference_pred=ref_pred).to_json()
    if ref_pred is not None:
        metrics["vs_teacher"] = _paired(truth, pred, ref_pred)
    out = ctx.stage_dir / EVAL_FILE
    _save_predictions(out.parent / PREDICTIONS_FILE, pred)
    from edgecompress.targets import host_info

    # int8 predictions depend on the CPU's kernels: the eval names the host that produced them
    record = {"model": str(inputs["model"]), "split": config.split, **metrics,
              "host": host_info(threads=1)}
    if reference is None:
        record.update(format="torch", scheme="fp32")
    atomic_write_json(out, record)
    return StageOutput(out, {k: metrics[k] for k in ("accuracy", "ci95", "n") if k in metrics})


def _paired(truth: np.ndarray, pred: np.ndarray, ref_pred: np.ndarray) -> dict:
    """Accuracy difference vs the reference on the same sentences, with its paired interval."""
    from edgecompress.stats import paired_delta

    return paired_delta(truth, pred, ref_pred).to_json()


@stage("bench", reads_data=True, uses_profile=True)
def bench_stage(inputs, config: BenchConfig, ctx: Context) -> StageOutput:
    """Latency, memory and size of the artifact with the target's runtime and threads: at the
    profile's batch x seq_len, and over real test sentences at their own token counts."""
    from edgecompress.fsutil import read_json
    from edgecompress.targets import bench

    artifact = Path(inputs["model"])
    manifest = read_json(artifact.parent / MANIFEST_FILE)
    measured = bench(artifact, target_profile(config), runs=config.runs,
                     warmup=config.warmup, vocab_size=manifest.get("vocab_size"),
                     lengths=None if manifest.get("modality") == "image"
                     else real_lengths(artifact.parent, ctx.data.load()))
    out = ctx.stage_dir / BENCH_FILE
    atomic_write_json(out, measured)
    return StageOutput(out, {"p50_ms": measured.get("p50_ms"),
                             "p50_real_ms": measured.get("p50_real_ms")})


REAL_SAMPLE = 200  # test sentences whose token counts the bench times (seeded, same every run)


def real_lengths(tokenizer_dir: Path, dataset) -> list[int] | None:
    """Token counts (cut at EVAL_MAX_LENGTH) of a seeded sample of the test split's sentences;
    None when the dataset has no test text."""
    from edgecompress.compress.evaluation.artifacts import load_tokenizer

    test = dataset.splits.get("test")
    if test is None or not len(test):
        return None
    texts = test.texts
    order = np.random.default_rng(0).permutation(len(texts))[:REAL_SAMPLE]
    encoded = load_tokenizer(tokenizer_dir)([texts[i] for i in order], truncation=True,
                                             max_length=EVAL_MAX_LENGTH)
    return [len(ids) for ids in encoded["input_ids"]]
