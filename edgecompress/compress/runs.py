"""`edgecompress run RECIPE`: the stages of a recipe into one resumable run directory.

    run.json                      the resolved recipe (what makes this run this run)
    stages/<stage>/stage.json     resolved config, hash of its input, metrics, timings, versions
    stages/<stage>/checkpoint/    its output model (finetune's lives in the shared teacher cache)
    teacher/eval.json             the fp32 teacher on the eval split (+ its predictions)
    artifacts/<target>/           artifact, tokenizer, manifest.json, eval.json, bench.json
    report.{json,md,csv,html}

Every file is written atomically and every step is skipped when its output is there and its
recorded input and config match, so a run killed at any point (kill -9) resumes where it was.
A directory holding a different run is refused unless forced; a new run never touches another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import time
from pathlib import Path

import numpy as np

from edgecompress.compress.recipe import Recipe
from edgecompress.errors import UserError
from edgecompress.fsutil import (atomic_write_bytes, atomic_write_json, check_replaceable,
                                 read_json, sha256_file)

STAGE_FILE = "stage.json"
EVAL_MAX_LENGTH = 128  # tokens per sentence when evaluating; the fixed-shape targets' seq_len


def check_run_dir(out: Path, identity: dict, force: bool) -> None:
    """Refuse a directory holding another run (unless `force`, which clears it)."""
    if not out.exists() or not any(out.iterdir()):
        return
    run_file = out / "run.json"
    if run_file.exists() and read_json(run_file) == identity:
        return  # the same run: resume it
    if not force:
        raise UserError(f"{out} already holds a different run; pass --force to replace it "
                        "or choose another --out")
    check_replaceable(out, force)
    shutil.rmtree(out)


def remove_stale_temps(out: Path) -> list[Path]:
    """Delete half-written files and directories a killed run left (`.<name>.<id>.tmp`)."""
    stale = sorted(p for p in out.rglob(".*.tmp")) + sorted(out.rglob(".*.partial.*"))
    for path in stale:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return stale


def input_hash(path: Path) -> str:
    """Identity of a stage's input: its stage.json if it came from a stage, else its weights."""
    digest = hashlib.sha256()
    stage_file = path.parent / STAGE_FILE
    if stage_file.exists():
        digest.update(stage_file.read_bytes())
    elif path.is_dir():  # a user's checkpoint: its bytes, so a retrained one is a new input
        for weights in sorted(path.glob("*.safetensors")):
            digest.update(f"{weights.name}:{sha256_file(weights)}".encode())
    else:
        digest.update(str(path).encode())  # a built-in name
    return digest.hexdigest()[:16]


def tool_versions() -> dict:
    from importlib.metadata import version

    names = ("edgecompress", "torch", "transformers", "onnxruntime", "litert-torch",
             "ai-edge-litert")
    return {name: version(name) for name in names}


def _stage_done(stage_dir: Path, config: dict, source_hash: str) -> dict | None:
    path = stage_dir / STAGE_FILE
    if not path.exists():
        return None
    record = read_json(path)
    same = record.get("config") == config and record.get("input_hash") == source_hash
    return record if same and Path(record["output"]).exists() else None


def stage_plan(recipe: Recipe) -> list[tuple[str, dict]]:
    """(stage, settings) in run order. Vocabulary pruning moves after distillation: it needs no
    recovery (accuracy unchanged within the CI on RT) and the teacher and the student must
    share a vocabulary while one learns from the other."""
    plan = [(name, recipe.settings(name)) for name, _ in recipe.stages]
    names = [name for name, _ in plan]
    prune = recipe.settings("prune") or {}
    if "distill" in names and prune.get("vocab_corpus"):
        structural = {k: v for k, v in prune.items() if k != "vocab_corpus"}
        plan = [(n, structural if n == "prune" else s) for n, s in plan]
        plan.append(("vocab", {"vocab_corpus": prune["vocab_corpus"]}))
    return plan


def run_stage(name: str, config: dict, recipe: Recipe, source: Path | str,
              teacher: Path | None, run_dir: Path, console) -> Path:
    """Run (or skip) one training stage; returns the checkpoint it produced."""
    from edgecompress.compress.stages import get_stage

    stage_dir = run_dir / "stages" / name
    source_hash = input_hash(Path(source))
    done = _stage_done(stage_dir, config, source_hash)
    if done:
        console.print(f"  {name}: cached ({done['output']})")
        return Path(done["output"])
    began = time.perf_counter()
    output, metrics = get_stage(name)(recipe, Path(source) if Path(source).exists() else source,
                                      teacher, stage_dir, config, console)
    record = {"stage": name, "config": config, "input": str(source), "input_hash": source_hash,
              "output": str(output), "metrics": metrics,
              "seconds": round(time.perf_counter() - began, 1), "versions": tool_versions()}
    atomic_write_json(stage_dir / STAGE_FILE, record)
    return Path(output)


def teacher_predictions(run_dir: Path, teacher: Path, split, max_length: int) -> np.ndarray:
    """Evaluate the fp32 teacher once; returns its predictions on `split` for agreement."""
    from edgecompress.compress.evaluate import classification_metrics, predict
    from edgecompress.compress.models import load_model
    from edgecompress.targets import torch_runner

    folder = run_dir / "teacher"
    pred_file = folder / "predictions.npy"
    if (folder / "eval.json").exists() and pred_file.exists():
        return np.load(pred_file)
    loaded = load_model(teacher)
    logits = predict(torch_runner(loaded.module), loaded.tokenizer, list(split.texts),
                     max_length=max_length)
    pred = logits.argmax(axis=1)
    metrics = classification_metrics(np.asarray(split.labels), pred, logits.shape[1])
    buffer = io.BytesIO()
    np.save(buffer, pred)
    atomic_write_bytes(pred_file, buffer.getvalue())
    atomic_write_json(folder / "eval.json", {"model": str(teacher), "format": "torch",
                                             "scheme": "fp32", **metrics.to_json()})
    return pred


def profile_for(recipe: Recipe, target: str):
    """The target's profile with the recipe's scheme override applied (validated by Profile)."""
    from edgecompress.targets import load_profile

    profile = load_profile(target)
    scheme = recipe.scheme_for(profile.name)
    if scheme is None or scheme == profile.scheme:
        return profile
    try:
        return dataclasses.replace(profile, scheme=scheme)
    except ValueError as err:
        raise UserError(f"{recipe.source}: quantize.schemes.{profile.name}: {err}") from None


def plan_lines(recipe: Recipe, run_dir: Path) -> list[str]:
    """What `run --dry-run` prints: stages x targets and what is already done."""
    lines = [f"recipe {recipe.name}: {recipe.model} on {recipe.dataset} -> {run_dir}"]
    for name, _ in stage_plan(recipe):
        done = (run_dir / "stages" / name / STAGE_FILE).exists()
        lines.append(f"  stage {name:<9} {'cached' if done else 'to run'}")
    for target in recipe.targets:
        profile = profile_for(recipe, target)
        folder = run_dir / "artifacts" / profile.name
        steps = [s for s, f in (("export", "manifest.json"), ("eval", "eval.json"),
                                ("bench", "bench.json")) if not (folder / f).exists()]
        state = "cached" if not steps else "to run: " + ", ".join(steps)
        lines.append(f"  target {profile.name:<12} {profile.format:<7}{profile.scheme:<26}{state}")
    return lines


def target_steps(run_dir: Path, final: Path, profile, split, teacher_pred, recipe: Recipe):
    """Export, eval and bench one target; yields a label before each step it actually runs."""
    from edgecompress.compress.artifacts import MANIFEST, export_artifact, open_evaluable
    from edgecompress.compress.evaluate import evaluate_classification
    from edgecompress.compress.models import load_model
    from edgecompress.targets import bench

    folder = run_dir / "artifacts" / profile.name
    source_hash = input_hash(final)
    manifest = read_json(folder / MANIFEST) if (folder / MANIFEST).exists() else {}
    if manifest.get("input_hash") != source_hash or manifest.get("scheme") != profile.scheme:
        yield f"export {profile.name} ({profile.format} {profile.scheme})"
        if folder.exists():
            shutil.rmtree(folder)  # stale: made from another input
        if profile.scheme == "fp32" and recipe.max_drop_for(profile.name) is None:
            manifest = export_artifact(load_model(final), profile, folder, source=str(final))
        else:
            manifest = _quantize_target(final, profile, folder, recipe)
        manifest["input_hash"] = source_hash
        atomic_write_json(folder / MANIFEST, manifest)
    artifact = folder / manifest["artifact"]
    if not (folder / "eval.json").exists():
        yield f"eval {profile.name}"
        model = open_evaluable(artifact, threads=1)
        metrics = evaluate_classification(model.runner, model.tokenizer, split, len(model.labels),
                                          reference_pred=teacher_pred, max_length=EVAL_MAX_LENGTH)
        atomic_write_json(folder / "eval.json", metrics.to_json())
    if not (folder / "bench.json").exists():
        yield f"bench {profile.name}"
        measured = bench(artifact, profile, runs=recipe.bench_runs, warmup=recipe.bench_warmup,
                         vocab_size=manifest.get("vocab_size"))
        atomic_write_json(folder / "bench.json", measured)


def _quantize_target(final: Path, profile, folder: Path, recipe: Recipe) -> dict:
    """Quantized artifacts go through the quantize stage: calibration on real sentences, the
    accuracy-aware fallback when the recipe sets max_drop, blame and preflight (quantize.json)."""
    from edgecompress.compress.quantize import QuantizeRequest, run_quantize

    target = str(profile.source) if profile.source else profile.name
    return run_quantize(QuantizeRequest(model=str(final), target=target, out=folder,
                                        dataset=recipe.dataset, scheme=profile.scheme,
                                        max_drop=recipe.max_drop_for(profile.name), force=True))


def run_recipe(recipe: Recipe, run_dir: Path, console, *, force: bool = False) -> Path:
    """Run every stage and target of `recipe` into `run_dir`; returns report.md's path."""
    from edgecompress.compress.data import load_dataset
    from edgecompress.reports import write_report

    profiles = [profile_for(recipe, t) for t in recipe.targets]  # bad targets fail first
    check_run_dir(run_dir, recipe.identity(), force)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(run_dir)
    atomic_write_json(run_dir / "run.json", recipe.identity())
    began = time.perf_counter()
    current = teacher = recipe.model  # the fp32 reference: the model, or the fine-tuned model
    for name, config in stage_plan(recipe):
        console.print(f"[bold]stage[/bold] {name}")
        current = run_stage(name, config, recipe, current, teacher, run_dir, console)
        if name == "finetune":
            teacher = current
    teacher = Path(teacher)
    split = load_dataset(recipe.dataset).split("test")
    console.print(f"[bold]teacher[/bold] fp32 eval on {len(split.texts)} sentences")
    teacher_pred = teacher_predictions(run_dir, teacher, split, EVAL_MAX_LENGTH)
    with _Progress(console, len(profiles) * 3) as advance:
        for profile in profiles:
            for label in target_steps(run_dir, Path(current), profile, split, teacher_pred,
                                      recipe):
                advance(label)
    paths = write_report(run_dir)
    console.print(f"finished in {time.perf_counter() - began:.0f} s")
    return next(p for p in paths if p.suffix == ".md")


class _Progress:
    """A rich bar over the per-target steps; `advance(label)` before each step."""

    def __init__(self, console, total: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                            console=console)
        self.total = total

    def __enter__(self):
        self.bar.start()
        self.task = self.bar.add_task("targets", total=self.total)
        return self.advance

    def advance(self, label: str) -> None:
        self.bar.update(self.task, description=label, advance=1)

    def __exit__(self, *exc):
        self.bar.update(self.task, completed=self.total, description="targets done")
        self.bar.stop()
        return False
