"""`edgecompress demo` and the run behind it: the whole flow into one run directory.

minilm-l6 + rt-polarity -> fine-tuned teacher (cached across runs) -> export per target ->
parity -> eval on the 2,000-sentence test split -> bench -> report. Each step writes its JSON
atomically and is skipped when its output is already there, so an interrupted demo resumes.

Run directory:
    run.json                      what this run is (model, dataset, targets)
    teacher/eval.json             fp32 torch teacher on the test split
    artifacts/<target>/           model.onnx|model.tflite, tokenizer, manifest.json, eval.json,
                                  bench.json
    report.json, report.md
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.artifacts import MANIFEST, export_artifact, open_evaluable
from edgecompress.compress.evaluate import evaluate_classification, predict
from edgecompress.compress.models import load_model
from edgecompress.compress.teacher import FinetuneRequest, run_finetune
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, cache_root, read_json

DEMO_MODEL = "minilm-l6"
DEMO_DATASET = "rt-polarity"
DEMO_TARGETS = ("x86-cpu", "arm64-phone", "rpi5")
EVAL_MAX_LENGTH = 128


def _check_run_dir(out: Path, identity: dict, force: bool) -> None:
    run_file = out / "run.json"
    if not out.exists() or not any(out.iterdir()):
        return
    if run_file.exists() and read_json(run_file) == identity:
        return  # same run: resume
    if not force:
        raise UserError(f"{out} already holds a different run; pass --force to replace it "
                        "or choose another --out")
    import shutil

    shutil.rmtree(out)


def build_teacher(plan: RunPlan, console) -> Path:
    """Fine-tune the plan's model on its dataset once; later runs reuse the cached checkpoint."""
    out = cache_root() / "teachers" / f"{Path(plan.model).name}-{Path(plan.dataset).stem}"
    run_finetune(FinetuneRequest(model=plan.model, dataset=plan.dataset, out=out), console)
    return out


def _teacher_eval(run: Path, teacher: Path, test) -> np.ndarray:
    """Evaluate the fp32 teacher once; returns its test predictions for agreement."""
    from edgecompress.targets import torch_runner

    pred_file = run / "teacher" / "predictions.npy"
    if (run / "teacher" / "eval.json").exists() and pred_file.exists():
        return np.load(pred_file)
    loaded = load_model(teacher)
    logits = predict(torch_runner(loaded.module), loaded.tokenizer, list(test.texts),
                     max_length=EVAL_MAX_LENGTH)
    pred = logits.argmax(axis=1)
    metrics = evaluate_classification(_Fixed(logits), loaded.tokenizer, test, logits.shape[1])
    (run / "teacher").mkdir(parents=True, exist_ok=True)
    np.save(pred_file, pred)
    atomic_write_json(run / "teacher" / "eval.json",
                      {"model": str(teacher), "format": "torch", "scheme": "fp32",
                       **metrics.to_json()})
    return pred


class _Fixed:
    """A runner that replays precomputed outputs (the teacher's logits, computed once)."""

    fixed_shape = None

    def __init__(self, outputs: np.ndarray):
        self.outputs, self.offset = outputs, 0

    def run(self, input_ids, attention_mask):
        chunk = self.outputs[self.offset:self.offset + len(input_ids)]
        self.offset += len(input_ids)
        return chunk


def _target_steps(run: Path, teacher: Path, profile, test, teacher_pred, bench_runs: int):
    """Export, eval and bench one target, each step skipped when its JSON already exists."""
    from edgecompress.targets import bench

    folder = run / "artifacts" / profile.name
    if not (folder / MANIFEST).exists():
        yield f"export {profile.name}"
        export_artifact(load_model(teacher), profile, folder, source=str(teacher))
    manifest = read_json(folder / MANIFEST)
    artifact = folder / manifest["artifact"]
    if not (folder / "eval.json").exists():
        yield f"eval {profile.name}"
        model_eval = open_evaluable(artifact, threads=1)
        metrics = evaluate_classification(model_eval.runner, model_eval.tokenizer, test,
                                          len(model_eval.labels), reference_pred=teacher_pred,
                                          max_length=EVAL_MAX_LENGTH)
        atomic_write_json(folder / "eval.json", metrics.to_json())
    if not (folder / "bench.json").exists():
        yield f"bench {profile.name}"
        atomic_write_json(folder / "bench.json", bench(artifact, profile, runs=bench_runs))


@dataclass(frozen=True)
class RunPlan:
    """What a run does: the teacher (fine-tuned from `model` on `dataset` unless `finetune` is
    False, when `model` already is the classifier), and the targets it is exported to."""

    model: str
    dataset: str
    targets: tuple[str, ...]
    finetune: bool = True
    bench_runs: int = 100

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("a run needs at least one target")
        if self.bench_runs < 1:
            raise ValueError(f"bench_runs must be >= 1, got {self.bench_runs}")

    def identity(self) -> dict:
        return {"kind": "edgecompress-run", "model": self.model, "dataset": self.dataset,
                "targets": list(self.targets), "finetune": self.finetune}


def run_plan(plan: RunPlan, out: Path, console, *, force: bool = False) -> Path:
    """Run `plan` into `out` (resuming what is there); returns the path of report.md."""
    from edgecompress.compress.data import load_dataset
    from edgecompress.reports import write_report
    from edgecompress.targets import load_profile

    profiles = [load_profile(name) for name in plan.targets]  # bad names fail before any work
    _check_run_dir(out, plan.identity(), force)
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "run.json", plan.identity())
    console.print(f"[bold]1/3[/bold] teacher: {plan.model} on {plan.dataset}")
    teacher = build_teacher(plan, console) if plan.finetune else Path(plan.model)
    test = load_dataset(plan.dataset).split("test")
    console.print(f"[bold]2/3[/bold] teacher eval on {len(test.texts)} test sentences")
    teacher_pred = _teacher_eval(out, teacher, test)
    console.print("[bold]3/3[/bold] export, verify, eval, bench per target")
    with _progress(console, len(profiles) * 3) as advance:
        for profile in profiles:
            for step in _target_steps(out, teacher, profile, test, teacher_pred,
                                      plan.bench_runs):
                advance(step)
    paths = write_report(out)
    console.print(f"finished in {time.perf_counter() - began:.0f} s")
    return next(p for p in paths if p.suffix == ".md")


def run_demo(out: Path, console, *, force: bool = False, bench_runs: int = 100) -> Path:
    """The demo: minilm-l6 fine-tuned on rt-polarity, exported to the three CPU targets."""
    plan = RunPlan(DEMO_MODEL, DEMO_DATASET, DEMO_TARGETS, bench_runs=bench_runs)
    return run_plan(plan, out, console, force=force)


class _progress:
    def __init__(self, console, total: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                            console=console)
        self.total = total

    def __enter__(self):
        self.bar.start()
        self.task = self.bar.add_task("targets", total=self.total)
        return self.advance

    def advance(self, description: str) -> None:
        self.bar.update(self.task, description=description, advance=1)

    def __exit__(self, *exc):
        self.bar.update(self.task, completed=self.total, description="targets done")
        self.bar.stop()
        return False
