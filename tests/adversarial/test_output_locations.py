"""Outputs that cannot be written: a read-only folder, a file system without the room, a disk
that fills while writing, a run folder another run is writing. Every one is refused in one line
with exit 2 before any work (or, for a disk that fills mid-write, with the partial output
removed), on real mounts: a read-only tmpfs and a 1 MiB tmpfs (skipped with the reason where
this machine cannot mount them)."""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import cases
from tests.adversarial.mounts import tmpfs
from tests.adversarial.test_stage_commands import _cmd
from tests.adversarial.worldfiles import _recipe

# A finished run's smallest form (its teacher's eval), for `report` in a read-only folder.
RUN_FILES = {
    "run/run.json": b'{"kind": "edgecompress-run", "recipe": "x", "targets": []}',
    "run/teacher/eval.json": b'{"model": "teacher", "split": "test", "accuracy": 0.5, "ci95": '
                             b'[0.2, 0.8], "n": 8, "correct": 4, "macro_f1": 0.5, "format": '
                             b'"torch", "scheme": "fp32"}',
    # one artifact, so the report has a row to write (a teacher alone is nothing to report)
    "run/artifacts/x86-cpu/manifest.json": b'{"target": "x86-cpu", "format": "onnx"}',
    "run/artifacts/x86-cpu/eval.json": b'{"accuracy": 0.5, "n": 8}',
    "run/artifacts/x86-cpu/bench.json": b'{"p50_ms": 1.0}',
}


@pytest.fixture
def mounted(tmp_path):
    """tmp/ro: a read-only tmpfs holding a run; tmp/full: a 1 MiB tmpfs (the tiny model's
    files are 4.6 MB)."""
    with tmpfs(tmp_path / "ro", readonly=True, files=RUN_FILES), \
            tmpfs(tmp_path / "full", size="1m"):
        yield tmp_path


def _good_recipe(w, t):
    """A recipe every check passes (fp32 x86-cpu on the tiny BERT): only the output is wrong."""
    path = t / "good.toml"
    path.write_text(_recipe(w.models["bert"], w.data["csv"]))
    return path


def _commands(where: str, *, with_model_only: bool = False):
    """The commands that write, each with its output under tmp/<where>/."""
    rows = [
        ("finetune", _cmd("finetune", "@bert", "--dataset", "@csv", "--out", f"@tmp/{where}/ft",
                          "--max-steps", "1")),
        ("prune", _cmd("prune", "@bert", "--dataset", "@csv", "--heads", "0.5", "--samples",
                       "8", "--out", f"@tmp/{where}/pruned")),
        ("distill", _cmd("distill", "--teacher", "@bert", "--student", "layers:1", "--dataset",
                         "@csv", "--out", f"@tmp/{where}/student", "--max-steps", "1")),
        ("quantize", _cmd("quantize", "@bert", "--target", "x86-cpu", "--dataset", "@csv",
                          "--out", f"@tmp/{where}/q")),
        ("export", _cmd("export", "@bert", "--target", "x86-cpu", "--out",
                        f"@tmp/{where}/export")),
        ("export-nested", _cmd("export", "@bert", "--target", "x86-cpu", "--out",
                               f"@tmp/{where}/a/b/export")),
        ("run", lambda w, t: ["run", _good_recipe(w, t), "--out", t / where / "run"]),
        ("run-dry", lambda w, t: ["run", _good_recipe(w, t), "--out", t / where / "run",
                                  "--dry-run"]),
    ]
    if not with_model_only:  # no model to size them by: only the probe write applies
        rows += [
            ("bundle", _cmd("bundle", "@stub_run", "--target", "x86-cpu", "--out",
                            f"@tmp/{where}/bundle")),
            ("init-encoder", _cmd("init-encoder", f"@tmp/{where}/enc")),
            ("demo", _cmd("demo", "--out", f"@tmp/{where}/demo")),
        ]
    if where == "ro":  # a report is written into its (read-only) run folder
        rows.append(("report", _cmd("report", "@tmp/ro/run")))
    return rows


READ_ONLY = cases(*[(f"{name}-read-only", build, "Read-only file system")
                    for name, build in _commands("ro")])
FULL = cases(*[(f"{name}-no-room", build, "not enough space")
               for name, build in _commands("full", with_model_only=True)])


@pytest.mark.parametrize("build, said, code", READ_ONLY + FULL)
def test_output_is_refused_before_any_work_when_it_cannot_be_written(build, said, code, world,
                                                                     mounted, expect_refusal):
    expect_refusal(build(world, mounted), said, code)


# A disk that fills while writing: the room check is set aside (factor 0) so the write itself
# fails on the 1 MiB tmpfs; the command says so in one line, exit 2, and removes what it had
# begun. Work has happened by then, so its progress lines may come first: the error is the last.
MID_WRITE = cases(
    ("export-disk-full", _cmd("export", "@bert", "--target", "x86-cpu", "--scheme", "fp32",
                              "--out", "@tmp/full/export"), "No space left on device"),
    ("finetune-disk-full", _cmd("finetune", "@bert", "--dataset", "@csv", "--out",
                                "@tmp/full/ft", "--max-steps", "1"), "No space left on device"),
)


@pytest.mark.parametrize("build, said, code", MID_WRITE)
def test_partial_output_is_removed_when_the_disk_fills_while_writing(build, said, code, world,
                                                                     mounted, monkeypatch):
    from typer.testing import CliRunner

    from edgecompress.cli import app
    from edgecompress.fsutil import CACHE_ENV
    from tests.adversarial.conftest import snapshot

    monkeypatch.setenv(CACHE_ENV, str(mounted / "cache"))
    monkeypatch.setattr("edgecompress.cli.common.OUTPUT_ROOM_FACTOR", 0)
    before = snapshot(world.root, mounted)
    result = CliRunner().invoke(app, [str(a) for a in build(world, mounted)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert lines[-1].startswith("error: cannot write") and said in lines[-1], lines[-1]
    assert not any(line.startswith("error") for line in lines[:-1]), lines
    assert snapshot(world.root, mounted) == before  # the half-written output is gone


def test_second_run_is_refused_in_one_line_when_another_run_holds_the_folder(world, tmp_path,
                                                                            expect_refusal):
    from edgecompress.fsutil import held_lock

    out = tmp_path / "run"
    out.mkdir()
    with held_lock(out):  # as a run in another process holds it (flock is per open file)
        expect_refusal(["run", _good_recipe(world, tmp_path), "--out", out],
                       "is in use by another edgecompress run (pid")
