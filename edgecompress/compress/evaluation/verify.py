"""`edgecompress verify`: an artifact on its target's own CPU kernels, without the device.

The artifact's bundle runner (targets/bundle_runner.py: numpy, tokenizers and the runtime) runs
the same real rows of its dataset twice: on this host, and under qemu emulation of an arm64 CPU
(targets/emulation.py) for each CPU profile asked. What comes back is how far the target's
kernels move the outputs: argmax agreement with its Wilson interval, max |Δ logit|, the lowest
row cosine, and accuracy on both sides. A disagreement beyond the target's parity gate
(min_agreement) fails the artifact, as the parity gate does at export.

It is a parity check: emulated time says nothing about the device's latency, and vendor
delegates, NPUs and SME2 are not exercised.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.data.dataref import DataRef
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, cache_root, read_json, sha256_file
from edgecompress.rundir import ARTIFACTS_DIR, MANIFEST_FILE, RunDir
from edgecompress.stats import wilson_interval

DEFAULT_ROWS = 200  # ~230 ms a sentence emulated for the demo student: a check, not a benchmark
SEED = 0
NOTE = ("parity under emulation: no latency, no vendor delegates or NPUs, no SME2")
RUNNABLE = {".onnx", ".tflite"}  # ExecuTorch's Python runtime needs torch, not in the sysroot


@dataclass(frozen=True)
class VerifyRequest:
    """What to verify: an artifact (file or folder), a run directory or a bundle."""

    source: Path
    isa: str = "arm64"
    cpus: tuple[str, ...] = ()  # CPU profile names; () = the ISA's default_cpus
    rows: int = DEFAULT_ROWS
    dataset: str | None = None  # where nothing records one
    data: DataRef | None = None  # a run's dataset with its columns and label map (its stage)
    target: str | None = None  # a profile (name or TOML) when the artifact's is not an ISA target

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise UserError(f"rows: expected a positive integer, got {self.rows}")


@dataclass(frozen=True)
class Subject:
    """One artifact to check and everything its check needs, resolved before any work."""

    target: str
    folder: Path  # the artifact folder, or the bundle
    is_bundle: bool
    profile: object | None  # targets.Profile (None: a bundle of an unknown target)
    min_agreement: float
    texts: tuple[str, ...]
    labels: tuple[int, ...] | None
    data: str  # "dataset/split" for the record
    record: Path | None  # a run's artifacts/<target>/verify.json


def plan_verify(request: VerifyRequest) -> list[Subject]:
    """The artifacts `request` names, each with its rows; UserError (one line) for a source
    that is none of artifact / run / bundle, a target that is not of the ISA, a format that
    cannot run emulated, or an artifact without a dataset (and no `dataset`)."""
    source = Path(request.source)
    if not source.exists():
        raise UserError(f"not found: {source}")
    if source.is_dir() and RunDir(source).run_file.is_file():
        run = RunDir(source)
        found = [run.artifact_dir(t) for t in run.artifact_targets()]
        subjects = [s for s in (_subject(request, f, run=run, of_run=True) for f in found) if s]
        if not subjects:
            raise UserError(f"run {source} has no {request.isa} target (no artifact whose "
                            f"profile sets verify_isa = \"{request.isa}\")")
        return subjects
    if source.is_file():
        source = source.parent
    if not (source / MANIFEST_FILE).is_file():
        raise UserError(f"{source} is no artifact, run directory or bundle (no {MANIFEST_FILE})")
    run = RunDir(source.parent.parent) if source.parent.name == ARTIFACTS_DIR else None
    return [_subject(request, source, run=run if run and run.run_file.is_file() else None)]


def _subject(request: VerifyRequest, folder: Path, *, run: RunDir | None,
             of_run: bool = False) -> Subject | None:
    from edgecompress.targets import load_profile

    manifest = _manifest(folder)
    is_bundle = (folder / "SHA256SUMS").is_file()
    name = str(manifest.get("target", ""))
    try:
        profile = load_profile(request.target or name)
    except UserError:
        if request.target or not is_bundle:
            raise
        profile = None
    if profile is not None and profile.verify_isa != request.isa:
        if of_run:
            return None  # a run's other targets are not this ISA's
        raise UserError(f"target {profile.name} is not an {request.isa} target (its profile sets "
                        f"no verify_isa = \"{request.isa}\"); pass --target with an "
                        f"{request.isa} profile that runs {manifest.get('format')} to check it")
    _check_runnable(folder, manifest, profile)
    texts, labels, data = _rows(request, manifest, folder, run)
    gate = (profile.gate(manifest.get("scheme")).min_agreement if profile is not None
            else float((manifest.get("parity") or {}).get("min_agreement", 1.0)))
    return Subject(name or folder.name, folder, is_bundle, profile, gate, texts, labels, data,
                   run.verify_file(folder.name) if run is not None else None)


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST_FILE
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is unreadable: {' '.join(str(err).split())[:160]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("artifact"), str):
        raise UserError(f"{path}: expected an object naming its 'artifact'")
    return data


def _check_runnable(folder: Path, manifest: dict, profile) -> None:
    suffix = Path(manifest["artifact"]).suffix
    if suffix not in RUNNABLE:
        raise UserError(f"{folder / manifest['artifact']}: {suffix or 'this'} artifacts cannot "
                        f"run under emulation (only {', '.join(sorted(RUNNABLE))}: ExecuTorch's "
                        "Python runtime needs torch)")
    if manifest.get("modality") == "image" or manifest.get("task") not in (None, "classification"):
        raise UserError(f"{folder}: verify checks text classifiers (this artifact is "
                        f"{manifest.get('modality') or manifest.get('task')})")
    if profile is not None and profile.suffix != suffix:
        raise UserError(f"target {profile.name} runs {profile.suffix} artifacts, {folder} holds "
                        f"{manifest['artifact']}")


def _rows(request: VerifyRequest, manifest: dict, folder: Path,
          run: RunDir | None) -> tuple[tuple[str, ...], tuple[int, ...] | None, str]:
    """`request.rows` seeded rows of the dataset's test split (a file without splits: all of
    it), labels matched to the artifact's by name."""
    from edgecompress.compress.data.datasets import sample_texts

    ref = _dataref(request, folder, run)
    dataset = ref.for_model(tuple(manifest.get("labels") or ()))
    split_name = "all" if dataset.drawn_splits else "test"
    split = dataset.whole() if dataset.drawn_splits else dataset.split("test")
    keep = [i for i, t in enumerate(split.texts) if isinstance(t, str) and t.strip()]
    if not keep:
        raise UserError(f"{dataset.name}/{split_name}: no text rows to verify on")
    texts = tuple(" ".join(split.texts[i].split()) for i in keep)  # one line each for run.py
    labels = None if split.labels is None else tuple(split.labels[i] for i in keep)
    from edgecompress.compress.data.datasets import Split

    picked = sample_texts(Split(texts, labels), min(request.rows, len(texts)), seed=SEED)
    return picked.texts, picked.labels, f"{dataset.name}/{split_name}"


def _dataref(request: VerifyRequest, folder: Path, run: RunDir | None) -> DataRef:
    if request.data is not None:
        return request.data
    if request.dataset:
        return DataRef(request.dataset)
    if run is not None:
        recorded = run.read_run()
        if not isinstance(recorded.get("dataset"), str):
            raise UserError(f"{run.run_file} records no dataset: pass --dataset")
        return DataRef(recorded["dataset"], recorded.get("text_col"), recorded.get("label_col"),
                       tuple((recorded.get("label_map") or {}).items()),
                       recorded.get("split_col"))
    raise UserError(f"{folder} records no dataset (it is not part of a run): pass --dataset")


@dataclass(frozen=True)
class Emulator:
    """A ready emulation: qemu probed, the environment built, each CPU profile pinned and
    probed (an SME trap refused) — everything a subject's check needs but its rows."""

    isa: str
    qemu: object  # emulation.Qemu
    env: object  # emulation.Environment
    pinned: tuple  # (CpuProfile, qemu -cpu argument, note) per profile asked
    probed: dict  # CPU profile name -> what the emulated process reported

    @property
    def key(self) -> dict:
        """What a result depends on besides the artifact and its rows."""
        return {"environment": self.env.root.name, "qemu": self.qemu.version_text,
                "cpus": [cpu.name for cpu, _, _ in self.pinned]}


def cpu_names(isa: str, cpus: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The CPU profiles `cpus` names (() = the ISA's default pair); UserError for an unknown one."""
    from edgecompress.targets import emulation

    spec = emulation.load_spec(isa)
    return tuple(spec.cpu(name).name for name in cpus or spec.default_cpus)


def emulation_key(isa: str) -> str:
    """What an emulated result depends on outside the artifact: the environment's key and the
    qemu found on PATH (or that none is), so installing or upgrading qemu reruns a check."""
    from edgecompress.targets import emulation

    spec = emulation.load_spec(isa)
    try:
        qemu = f"qemu {emulation.probe_qemu(spec).version_text}"
    except UserError:
        qemu = "no qemu"
    return f"{isa}-{spec.key} {qemu}"


def open_emulator(isa: str, cpus: tuple[str, ...], progress=print) -> Emulator:
    """Probe qemu, open (or build, once, into the cache) the environment and pin every CPU
    profile; UserError when qemu is missing, the cache is broken or a profile hits the SME
    trap."""
    from edgecompress.targets import emulation

    spec = emulation.load_spec(isa)
    chosen = [spec.cpu(name) for name in cpu_names(isa, cpus)]
    qemu = emulation.probe_qemu(spec)
    pinned = tuple((cpu, *emulation.qemu_cpu_for(spec, qemu, cpu)) for cpu in chosen)
    env = emulation.open_environment(spec)
    if env is None:
        progress(f"building the {isa} emulation environment (once, into the cache)")
        env = emulation.build_environment(spec, qemu, progress, reuse=True)
    probed = {}
    for cpu, qemu_cpu, _ in pinned:  # before any artifact runs: refuse an SME trap
        probed[cpu.name] = emulation.probe(env, qemu, cpu, qemu_cpu)
        emulation.check_no_sme(spec, qemu, cpu, probed[cpu.name])
    return Emulator(isa, qemu, env, pinned, probed)


def verify_artifacts(request: VerifyRequest, progress=print) -> dict:
    """Check every artifact `request` names on each CPU profile; returns a JSON-ready dict with
    one result per artifact, each written to its run's artifacts/<target>/verify.json.
    Artifacts of identical bytes (a run's arm64-phone and rpi5) run once.

    Everything the user can get wrong is refused (UserError) before the emulation environment
    is built (on first use, into the cache) or any artifact runs.
    """
    cpus = cpu_names(request.isa, request.cpus)
    subjects = plan_verify(request)
    emulator = open_emulator(request.isa, cpus, progress)
    results, done = [], []
    for subject in subjects:
        results.append(verify_subject(subject, emulator, progress, reuse=done))
        done.append(results[-1])
    return {"isa": request.isa, "qemu": emulator.qemu.version_text,
            "environment": emulator.env.root.name, "note": NOTE, "results": results,
            "passed": all(r["passed"] for r in results)}


def verify_subject(subject: Subject, emulator: Emulator, progress=print,
                   reuse: list[dict] = ()) -> dict:
    """Check one subject on every CPU profile of `emulator`; returns its record (written to
    `subject.record` when it has one). A record in `reuse` of the same artifact bytes, rows,
    environment and CPU profiles stands in for running it again, judged by this subject's own
    gate."""
    artifact = subject.folder / _manifest(subject.folder)["artifact"]
    same = {"artifact_sha256": sha256_file(artifact), "data": subject.data,
            "rows": len(subject.texts), **emulator.key}
    for earlier in reuse:
        if all(earlier.get(k) == v for k, v in same.items()) and earlier.get("profiles"):
            progress(f"{subject.target}: same artifact bytes as {earlier['target']}, "
                     "its emulated result reused")
            profiles = [{**p, "passed": p["agreement"] >= subject.min_agreement}
                        for p in earlier["profiles"]]
            host = {k: earlier[k] for k in ("host_accuracy",) if k in earlier}
            return _record(subject, _manifest(subject.folder), profiles, emulator,
                           {**host, "reused_from": earlier["target"]})
    return _verify_one(subject, emulator, progress)


def _verify_one(subject: Subject, emulator: Emulator, progress) -> dict:
    from edgecompress.targets import emulation
    from edgecompress.targets.bundle import make_bundle

    env, qemu = emulator.env, emulator.qemu
    work = Path(tempfile.mkdtemp(prefix="verify-", dir=_work_root()))
    try:
        bundle = subject.folder
        if not subject.is_bundle:
            bundle = work / "bundle"
            make_bundle(subject.folder, subject.profile, bundle)
        manifest = read_json(bundle / MANIFEST_FILE)
        rows = work / "rows.txt"
        rows.write_text("".join(t + "\n" for t in subject.texts), encoding="utf-8")
        args = [str(bundle / "run.py"), "--file", str(rows), "--threads", "1", "--out"]
        progress(f"{subject.target}: {len(subject.texts)} rows on this host")
        host = _logits(subprocess.run([sys.executable, *args, str(work / "host.json")],
                                      capture_output=True, text=True), work / "host.json",
                       "this host")
        profiles = []
        for cpu, qemu_cpu, note in emulator.pinned:
            progress(f"{subject.target}: {len(subject.texts)} rows emulated on {cpu.name} "
                     f"(-cpu {qemu_cpu})")
            began = time.perf_counter()
            out = work / f"{cpu.name}.json"
            done = emulation.run_emulated(env, qemu, cpu, qemu_cpu, [*args, str(out)],
                                          timeout=60 + 10 * len(subject.texts))
            emulated = _logits(done, out, f"CPU profile {cpu.name}")
            profiles.append({"cpu": cpu.name, "description": cpu.description,
                             "qemu_cpu": qemu_cpu, **({"note": note} if note else {}),
                             "features": emulator.probed[cpu.name]["features"],
                             **compare_logits(host, emulated, subject.labels,
                                              subject.min_agreement),
                             "seconds": round(time.perf_counter() - began, 1)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    extra = {"host_accuracy": _accuracy(host, subject.labels)} if subject.labels else {}
    return _record(subject, manifest, profiles, emulator, extra)


def _record(subject: Subject, manifest: dict, profiles: list[dict], emulator: Emulator,
            extra: dict) -> dict:
    artifact = subject.folder / manifest["artifact"]
    record = {"kind": "verify", "target": subject.target, "artifact": manifest["artifact"],
              "artifact_sha256": sha256_file(artifact), "format": manifest.get("format"),
              "scheme": manifest.get("scheme"), "data": subject.data,
              "rows": len(subject.texts), **emulator.key,
              "gate": {"min_agreement": subject.min_agreement}, **extra,
              "profiles": profiles, "passed": all(p["passed"] for p in profiles), "note": NOTE}
    if subject.record is not None:
        atomic_write_json(subject.record, record)
    return record


def _work_root() -> Path:
    root = cache_root() / "emulation" / "work"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _logits(done: subprocess.CompletedProcess, out: Path, where: str) -> np.ndarray:
    if done.returncode != 0 or not out.is_file():
        tail = " ".join((done.stderr or done.stdout or "").split())[-300:]
        raise UserError(f"the bundle runner failed on {where} (exit {done.returncode}): {tail}")
    return np.asarray([row["logits"] for row in json.loads(out.read_text())], np.float64)


def _accuracy(logits: np.ndarray, labels) -> dict:
    truth = np.asarray(labels)
    correct = int(np.sum(logits.argmax(axis=1) == truth))
    return {"accuracy": correct / len(truth), "ci95": list(wilson_interval(correct, len(truth))),
            "correct": correct}


def compare_logits(host: np.ndarray, emulated: np.ndarray, labels, min_agreement: float) -> dict:
    """How far the emulated outputs are from the host's on the same rows (n, classes):
    agreement of argmax with its Wilson interval, max |Δ logit|, lowest row cosine, accuracy
    (with labels), and whether agreement meets `min_agreement`."""
    if host.shape != emulated.shape or not len(host):
        raise UserError(f"host and emulated outputs differ in shape: {host.shape} vs "
                        f"{emulated.shape}")
    same = int(np.sum(host.argmax(axis=1) == emulated.argmax(axis=1)))
    norms = np.linalg.norm(host, axis=1) * np.linalg.norm(emulated, axis=1)
    cosine = np.sum(host * emulated, axis=1) / np.where(norms > 0, norms, 1.0)
    n = len(host)
    found = {"agreement": same / n, "agreement_ci95": list(wilson_interval(same, n)),
             "disagreements": n - same,
             "max_abs_diff": float(np.max(np.abs(host - emulated))),
             "min_cosine": float(np.min(np.where(norms > 0, cosine, 1.0)))}
    if labels is not None:
        found["accuracy"] = _accuracy(emulated, labels)
    found["passed"] = found["agreement"] >= min_agreement
    return found
