"""kill -9 `edgecompress run` at several points; each rerun resumes, and the finished run has the
same report numbers as an uninterrupted one and no stray files."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_recipe

EDGECOMPRESS = str(Path(sys.executable).parent / "edgecompress")
# one target keeps this under a minute (each kill is a fresh run); the kill points are a step's
# own result, an artifact written before its manifest, and an eval after its export
KILL_WHEN = ["teacher/eval.json", "artifacts/x86-cpu/model.onnx", "artifacts/x86-cpu/eval.json"]


def _run(recipe: Path, out: Path, kill_when: str | None = None) -> int:
    """Run to the end, or SIGKILL as soon as `kill_when` (relative to out) exists."""
    proc = subprocess.Popen([EDGECOMPRESS, "run", str(recipe), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if kill_when and (out / kill_when).exists():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return -9
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        pytest.fail("edgecompress run did not finish in 300 s")
    return proc.returncode


def _numbers(out: Path) -> list[tuple]:
    rows = json.loads((out / "report.json").read_text())["rows"]
    return sorted((r["target"], r["scheme"], r["accuracy"], r["agreement"], r["size_bytes"],
                   r["parity_max_abs_diff"]) for r in rows)


def test_killed_runs_resume_to_the_same_report_without_stray_files(tiny_bert_dir, sentiment_csv,
                                                                     tmp_path):
    recipe = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("x86-cpu",))
    assert _run(recipe, tmp_path / "reference") == 0
    out = tmp_path / "killed"
    kills = [_run(recipe, out, when) for when in KILL_WHEN]
    assert kills.count(-9) >= 2, kills  # most kill points were reached before the run ended
    assert _run(recipe, out) == 0
    assert _numbers(out) == _numbers(tmp_path / "reference")
    latency = {r["target"]: r["p50_ms"] for r in json.loads((out / "report.json").read_text())
               ["rows"]}
    assert all(0 < ms < 1000 for ms in latency.values())
    from edgecompress.fsutil import OUTPUT_MARKER

    stray = [p for p in out.rglob("*") if (p.name.startswith(".") and p.name != OUTPUT_MARKER)
             or ".partial." in p.name or p.suffix == ".tmp"]
    assert stray == []
