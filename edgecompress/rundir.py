"""The run directory's layout: every path a run holds and the readers / writers of its JSON.

    .edgecompress-output          the ownership marker (fsutil.mark_output): edgecompress made it
    .edgecompress.lock            held while a run writes here (fsutil.held_lock): its pid, host
    run.json                      the resolved recipe of the run that last wrote this folder
    stages/<step>/stage.json      one step's record: identity, config, input digests, output,
                                  metrics, seconds, versions (compress/identity.py)
    stages/<step>/checkpoint/     a training step's model
    teacher/eval.json             the fp32 teacher on the eval split (+ predictions.npy)
    artifacts/<target>/           export's folder: artifact, tokenizer, manifest.json,
                                  eval.json, bench.json, verify.json (`verify`) — or
                                  refused.json when the gate said no
    report.{json,md,csv,html}

compress/ writes these files and reports/ reads them, both through this module, so a name is
spelt once. A folder is a store of steps keyed by identity: a rerun keeps every step whose
identity holds and replaces the others; `stale_entries` names what an edited recipe no longer
plans, which the run removes, so a report shows the current recipe only.

Readers raise UserError with one line naming the file (missing, unreadable, not UTF-8, not
JSON, not an object); writers are atomic (fsutil), so a killed run leaves the old file or the new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json

RUN_FILE = "run.json"
STAGES_DIR = "stages"
STAGE_FILE = "stage.json"
ROUND_MARK = "-round"  # the step id of an earlier prune / distill round: "prune-round1"
CHECKPOINT_DIR = "checkpoint"
TEACHER_DIR = "teacher"
ARTIFACTS_DIR = "artifacts"
MANIFEST_FILE = "manifest.json"
EVAL_FILE = "eval.json"
BENCH_FILE = "bench.json"
REFUSED_FILE = "refused.json"
# the artifact on its target's ISA, emulated (a run's verify step or `edgecompress verify`)
VERIFY_FILE = "verify.json"
PREDICTIONS_FILE = "predictions.npy"
REPORT_STEM = "report"
LLM_RUN_KIND = "edgecompress-llm-run"  # run.json's kind for a decoder LM's recipe: its report
                                       # is reports/llm.py's
REPORT_FORMATS = ("json", "md", "csv", "html")
CLASSES_CSV = "report-classes.csv"  # the report's per-class section as CSV (reports/classes.py)
DEVICE_DIR = "device-results"  # on-device measurements imported by `report --device-results`
# what a run writes at the top of its folder; anything else there is not the run's
RUN_ENTRIES = (RUN_FILE, STAGES_DIR, TEACHER_DIR, ARTIFACTS_DIR, DEVICE_DIR,
               *(f"{REPORT_STEM}.{fmt}" for fmt in REPORT_FORMATS), CLASSES_CSV)


def read_object(path: Path, *, missing_ok: bool = True) -> dict:
    """The JSON object in `path`; {} when it is missing and `missing_ok`.

    Raises UserError (one line naming the file) when it is missing otherwise, unreadable, not
    UTF-8, not JSON, or not an object.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise UserError(f"{path} not found") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise UserError(f"{path} is not valid JSON: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def write_object(path: Path, data: dict) -> Path:
    """Write `data` to `path` atomically; returns `path`."""
    atomic_write_json(Path(path), data)
    return Path(path)


@dataclass(frozen=True)
class RunDir:
    """One run directory: its paths, and typed readers / writers of the files it holds."""

    root: Path

    # -- paths -------------------------------------------------------------------------------
    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def stages(self) -> Path:
        return self.root / STAGES_DIR

    def stage_dir(self, step: str) -> Path:
        return self.stages / step

    def stage_file(self, step: str) -> Path:
        return self.stage_dir(step) / STAGE_FILE

    def round_steps(self, stage: str) -> list[str]:
        """The earlier rounds' step ids of `stage` this run wrote ([prune] rounds), in order."""
        found = [p.name for p in self.stages.glob(f"{stage}{ROUND_MARK}*")
                 if p.name[len(stage) + len(ROUND_MARK):].isdigit()]
        return sorted(found, key=lambda name: int(name[len(stage) + len(ROUND_MARK):]))

    @property
    def teacher(self) -> Path:
        return self.root / TEACHER_DIR

    @property
    def teacher_eval(self) -> Path:
        return self.teacher / EVAL_FILE

    @property
    def artifacts(self) -> Path:
        return self.root / ARTIFACTS_DIR

    def artifact_dir(self, target: str) -> Path:
        return self.artifacts / target

    def manifest_file(self, target: str) -> Path:
        return self.artifact_dir(target) / MANIFEST_FILE

    def eval_file(self, target: str) -> Path:
        return self.artifact_dir(target) / EVAL_FILE

    def bench_file(self, target: str) -> Path:
        return self.artifact_dir(target) / BENCH_FILE

    def refused_file(self, target: str) -> Path:
        return self.artifact_dir(target) / REFUSED_FILE

    def verify_file(self, target: str) -> Path:
        return self.artifact_dir(target) / VERIFY_FILE

    def report_file(self, fmt: str) -> Path:
        if fmt not in REPORT_FORMATS:
            raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(REPORT_FORMATS)})")
        return self.root / f"{REPORT_STEM}.{fmt}"

    @property
    def device_dir(self) -> Path:
        return self.root / DEVICE_DIR

    # -- what is there -----------------------------------------------------------------------
    def artifact_targets(self) -> list[str]:
        """Targets with an artifact manifest, sorted."""
        return sorted(p.parent.name for p in self.artifacts.glob(f"*/{MANIFEST_FILE}"))

    def refused_targets(self) -> list[str]:
        """Targets whose artifact the parity gate refused, sorted."""
        return sorted(p.parent.name for p in self.artifacts.glob(f"*/{REFUSED_FILE}"))

    def step_records(self) -> list[Path]:
        """Every stages/<step>/stage.json, sorted."""
        return sorted(self.stages.glob(f"*/{STAGE_FILE}"))

    def stale_entries(self, steps: set[str], targets: set[str]) -> list[Path]:
        """Step folders and artifact folders that a plan of `steps` and `targets` does not
        make: what an older recipe left in this folder."""
        old_steps = [p for p in sorted(self.stages.glob("*")) if p.is_dir() and p.name not in steps]
        old_targets = [p for p in sorted(self.artifacts.glob("*"))
                       if p.is_dir() and p.name not in targets]
        return old_steps + old_targets

    # -- readers (UserError naming the file) -------------------------------------------------
    def read_run(self) -> dict:
        return read_object(self.run_file)

    def read_stage(self, step: str) -> dict:
        return read_object(self.stage_file(step))

    def read_teacher_eval(self) -> dict:
        return read_object(self.teacher_eval)

    def read_manifest(self, target: str, *, missing_ok: bool = True) -> dict:
        return read_object(self.manifest_file(target), missing_ok=missing_ok)

    def read_eval(self, target: str) -> dict:
        return read_object(self.eval_file(target))

    def read_bench(self, target: str) -> dict:
        return read_object(self.bench_file(target))

    def read_refused(self, target: str) -> dict:
        return read_object(self.refused_file(target))

    # -- writers (atomic) --------------------------------------------------------------------
    def write_run(self, recipe: dict) -> Path:
        return write_object(self.run_file, recipe)

    def write_stage(self, step: str, record: dict) -> Path:
        return write_object(self.stage_file(step), record)

    def write_refused(self, target: str, step: str, reason: str, diffs,
                      gate: dict | None = None) -> Path:
        """refused.json: why; `gate`, what the gate measured (the agreement's interval among
        them) and what it was held to, when known."""
        record = {"target": target, "step": step, "reason": reason, "diffs": diffs}
        if gate is not None:
            record["gate"] = gate
        return write_object(self.refused_file(target), record)
