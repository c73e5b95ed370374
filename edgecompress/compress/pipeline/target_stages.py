"""The per-target stages of a run — export (quantize + verify), eval, bench, and verify on the
target's own CPU kernels under emulation — and the fp32 teacher's evaluation, registered in the
same stage table as the training stages. Where each writes
(artifacts/<target>/{manifest,eval,bench,verify}.json, teacher/eval.json) is edgecompress/rundir.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.config import FieldError, check_types, option
from edgecompress.compress.evaluation.verify import DEFAULT_ROWS
from edgecompress.compress.pipeline.stages import Context, StageOutput, stage
from edgecompress.errors import ParityError
from edgecompress.fsutil import atomic_write_bytes, atomic_write_json
from edgecompress.rundir import (
    BENCH_FILE,
    EVAL_FILE,
    MANIFEST_FILE,
    PREDICTIONS_FILE,
    VERIFY_FILE,
)

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


@dataclass(frozen=True)
class VerifyConfig:
    """The recipe's [verify] table: after its eval, each target whose profile sets `verify_isa`
    runs on that ISA's CPU kernels under qemu emulation (compress/evaluation/verify.py), and
    an agreement with the host below the target's parity gate refuses the artifact."""

    enabled: bool = option(True, help="Verify targets whose profile sets verify_isa, emulated.")
    rows: int = option(DEFAULT_ROWS, help="Seeded test rows to run (≈ 230 ms each emulated for "
                                          "a 3-layer MiniLM, per CPU profile).")
    cpus: tuple[str, ...] = option((), help="CPU profiles of the ISA (targets/isas/<isa>.toml); "
                                            "empty: its default pair.")

    def __post_init__(self) -> None:
        check_types(self)
        if self.rows < 1:
            raise FieldError("rows", f"expected a positive integer, got {self.rows}")
        if not all(isinstance(name, str) and name for name in self.cpus):
            raise FieldError("cpus", f"expected a list of CPU profile names, got {self.cpus!r}")


@dataclass(frozen=True)
class VerifyStageConfig:
    """One target's verify step: its profile (and scheme, whose gate judges), the ISA and what
    the recipe's [verify] table asks, the CPU profiles resolved so they are part of its identity."""

    target: str
    scheme: str
    isa: str
    rows: int
    cpus: tuple[str, ...]


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
                                                 config=config, data=ctx.data, force=True))
    parity = manifest["parity"]
    return StageOutput(folder / manifest["artifact"],
                       {"scheme": manifest["scheme"], "size_bytes": manifest["size_bytes"],
                        "parity_max_abs_diff": parity["max_abs_diff"],
                        "parity_agreement": parity["agreement"]})


def _evaluation_method(config: EvalConfig) -> dict:
    """What an eval step's number depends on besides its inputs: the way it is measured."""
    from edgecompress.compress.evaluation.evaluate import EVALUATION_METHOD

    return {"method": EVALUATION_METHOD}


@stage("eval", reads_data=True, reads=_evaluation_method)
def eval_stage(inputs, config: EvalConfig, ctx: Context) -> StageOutput:
    """Accuracy of a checkpoint or artifact on the split, run as deployed (evaluate_split:
    the same path as `edgecompress eval`), with agreement (and the paired delta) against the
    reference predictions when `inputs` has a `reference` eval.json."""
    from edgecompress.compress.evaluation.artifacts import open_evaluable
    from edgecompress.compress.evaluation.evaluate import evaluate_split

    model = open_evaluable(inputs["model"], threads=1)
    data = ctx.data.for_model(model.labels)  # class ids by name
    split = data.split(config.split)
    reference = inputs.get("reference")
    ref_pred = reference_predictions(Path(reference)) if reference else None
    evaluation = evaluate_split(model.runner, model.tokenizer, split, data.labels,
                                max_length=config.max_length, reference_pred=ref_pred)
    pred, metrics = evaluation.pred, evaluation.record
    if ref_pred is not None:
        metrics["vs_teacher"] = _paired(np.asarray(split.labels), pred, ref_pred)
    out = ctx.stage_dir / EVAL_FILE
    _save_predictions(out.parent / PREDICTIONS_FILE, pred)
    from edgecompress.compress.data.audit import duplicates
    from edgecompress.targets import host_info

    # int8 predictions depend on the CPU's kernels: the eval names the host that produced them
    record = {"model": str(inputs["model"]), "split": config.split, **metrics,
              "host": host_info(threads=1)}
    record["duplicates"] = duplicates(ctx.data.load(), config.split)  # rows also in train
    if reference is None:
        record.update(format="torch", scheme="fp32")
    atomic_write_json(out, record)
    return StageOutput(out, {k: metrics[k] for k in ("accuracy", "ci95", "n", "evaluated_as")
                             if k in metrics})


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


def _emulation_inputs(config: VerifyStageConfig) -> dict:
    """What a verify step reads besides the artifact and the data: the emulation environment's
    key and the qemu on PATH (installing qemu later reruns a skipped check)."""
    from edgecompress.compress.evaluation.verify import emulation_key

    return {"emulation": emulation_key(config.isa)}


@stage("verify", reads_data=True, uses_profile=True, reads=_emulation_inputs)
def verify_stage(inputs, config: VerifyStageConfig, ctx: Context) -> StageOutput:
    """The artifact on its target's ISA under emulation, against this host, into
    artifacts/<target>/verify.json. Another target's record of the same artifact bytes in this
    run is reused (arm64-phone and rpi5 export the same TFLite). An agreement below the gate
    raises ParityError (the run refuses the target); no qemu, or an emulation environment that
    cannot be built, records a skip with its reason and does not fail the run."""
    from edgecompress.compress.evaluation.verify import (
        NOTE,
        VerifyRequest,
        open_emulator,
        plan_verify,
        verify_subject,
    )
    from edgecompress.errors import UserError

    folder = Path(inputs["model"]).parent
    out = folder / VERIFY_FILE
    say = _printer(ctx.console)
    (subject,) = plan_verify(VerifyRequest(folder, config.isa, config.cpus, config.rows,
                                           target=config.target, data=ctx.data))
    try:
        emulator = open_emulator(config.isa, config.cpus, say)
    except UserError as err:  # the host cannot emulate: the run goes on, the report says why
        reason = " ".join(str(err).split())
        atomic_write_json(out, {"kind": "verify", "target": subject.target, "isa": config.isa,
                                "skipped": reason, "note": NOTE})
        say(f"{subject.target}: not verified on {config.isa} — {reason}")
        return StageOutput(out, {"skipped": reason})
    record = verify_subject(subject, emulator, say, reuse=_sibling_records(folder))
    worst = min(record["profiles"], key=lambda p: p["agreement"])
    if not record["passed"]:
        raise ParityError(record["artifact"], {p["cpu"]: 1.0 - p["agreement"]
                                               for p in record["profiles"]},
                          subject.min_agreement,
                          detail=f"on {config.isa} kernels (emulated) {worst['cpu']} agreed on "
                                 f"{worst['agreement']:.1%} of {record['rows']} rows, below "
                                 f"the gate's {subject.min_agreement:.1%}")
    return StageOutput(out, {"rows": record["rows"], "lowest_agreement": worst["agreement"],
                             "cpus": [p["cpu"] for p in record["profiles"]],
                             **({"reused_from": record["reused_from"]}
                                if "reused_from" in record else {})})


def _sibling_records(folder: Path) -> list[dict]:
    """The verify records of the run's other targets (unreadable ones left out)."""
    from edgecompress.fsutil import read_json

    found = []
    for path in sorted(folder.parent.glob(f"*/{VERIFY_FILE}")):
        try:
            record = read_json(path) if path.parent != folder else None
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict):
            found.append(record)
    return found


def _printer(console):
    def say(message: str) -> None:
        if console is not None:
            console.print(f"  {message}", markup=False, highlight=False)
    return say
