"""A run's verify step: each target whose profile sets verify_isa runs on that ISA's CPU kernels
under emulation after its eval, cached like every step; a disagreement beyond the gate refuses
the target; no qemu records a skip with its reason and the run goes on. Emulated cases need qemu
(skipped with the reason where it is missing)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.evaluation import verify
from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import plan_lines, plan_states, run_recipe
from edgecompress.errors import UserError
from edgecompress.targets import emulation
from tests.conftest import write_recipe

HAVE_QEMU = any(shutil.which(n) for n in emulation.load_spec("arm64").qemu)
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-aarch64 not installed (apt-get "
                                                      "install qemu-user-static)")
TARGETS = ("x86-cpu", "arm64-phone", "rpi5")
runner = CliRunner()


def _recipe(directory, tiny_bert_dir, sentiment_csv, extra="", targets=TARGETS):
    return write_recipe(directory, tiny_bert_dir, sentiment_csv, extra, targets=targets)


@pytest.fixture(scope="module")
def verified_run(tiny_bert_dir, sentiment_csv, tmp_path_factory):
    if not HAVE_QEMU:
        pytest.skip("qemu-aarch64 not installed (apt-get install qemu-user-static)")
    root = tmp_path_factory.mktemp("verified")
    recipe = load_recipe(_recipe(root, tiny_bert_dir, sentiment_csv))
    out = root / "run"
    run_recipe(recipe, out, Console(quiet=True))
    return recipe, out


@needs_qemu
def test_run_verifies_each_arm64_target_on_two_cpu_profiles_when_qemu_is_present(verified_run):
    _, out = verified_run
    record = json.loads((out / "artifacts/arm64-phone/verify.json").read_text())
    assert [p["cpu"] for p in record["profiles"]] == ["cortex-a76", "armv9-i8mm"]
    assert record["passed"] and record["rows"] == 8  # the whole test split of the tiny CSV
    assert all(p["agreement"] == 1.0 for p in record["profiles"])  # fp32: same argmax
    assert not (out / "artifacts/x86-cpu/verify.json").exists()  # x86-cpu sets no verify_isa
    stage = json.loads((out / "stages/verify-arm64-phone/stage.json").read_text())
    emulated_on = stage["inputs"]["emulation"]  # part of the step's identity
    assert emulated_on.startswith("arm64-") and "qemu" in emulated_on


@needs_qemu
def test_run_reuses_the_emulated_result_when_two_targets_export_the_same_bytes(verified_run):
    _, out = verified_run
    phone, pi = (json.loads((out / f"artifacts/{t}/verify.json").read_text())
                 for t in ("arm64-phone", "rpi5"))
    if phone["artifact_sha256"] != pi["artifact_sha256"]:
        pytest.skip("the two TFLite exports differ in bytes here: nothing to reuse")
    assert pi["reused_from"] == "arm64-phone" and pi["profiles"] == phone["profiles"]


@needs_qemu
def test_report_shows_the_kernels_cell_in_every_format_when_the_run_verified(verified_run):
    _, out = verified_run
    for name in ("report.md", "report.html", "report.csv"):
        text = (out / name).read_text()
        assert "arm64 cortex-a76 100.0% / armv9-i8mm 100.0% agree" in text, name
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert {r["target"] for r in rows if r["kernels"]} == {"arm64-phone", "rpi5"}


@needs_qemu
def test_rerun_caches_the_verify_steps_when_nothing_changed(verified_run):
    recipe, out = verified_run
    records = sorted(out.glob("artifacts/*/verify.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    console = Console(record=True, width=200)
    run_recipe(recipe, out, console)
    assert [p.stat().st_mtime_ns for p in records] == stamps
    printed = console.export_text()
    assert "verify-arm64-phone: cached" in printed and "verify-rpi5: cached" in printed


def test_dry_run_lists_verify_steps_for_arm64_targets_only_when_nothing_exists(
        tiny_bert_dir, sentiment_csv, tmp_path):
    recipe = load_recipe(_recipe(tmp_path, tiny_bert_dir, sentiment_csv))
    lines = plan_lines(recipe, tmp_path / "fresh")
    by_target = {line.split()[1]: line for line in lines if line.strip().startswith("target")}
    assert "to run: export, eval, verify, bench" in by_target["arm64-phone"]
    assert "to run: export, eval, verify, bench" in by_target["rpi5"]
    assert "to run: export, eval, bench" in by_target["x86-cpu"]


def test_recipe_verify_table_turns_the_steps_off_and_sets_rows_and_cpus_when_given(
        tiny_bert_dir, sentiment_csv, tmp_path):
    off = load_recipe(_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                              "\n[verify]\nenabled = false\n"))
    assert not [s for s, _ in plan_states(off, tmp_path / "a") if s.stage == "verify"]
    (tmp_path / "b").mkdir()
    on = load_recipe(_recipe(tmp_path / "b", tiny_bert_dir, sentiment_csv,
                             '\n[verify]\nrows = 16\ncpus = ["cortex-a53"]\n'))
    steps = [s for s, _ in plan_states(on, tmp_path / "c") if s.stage == "verify"]
    assert [s.id for s in steps] == ["verify-arm64-phone", "verify-rpi5"]
    assert steps[0].config.rows == 16 and steps[0].config.cpus == ("cortex-a53",)
    assert on.identity()["verify"]["rows"] == 16 and off.identity()["verify"]["enabled"] is False


@pytest.mark.parametrize("table, needle", [
    ('rows = 0', "key 'verify.rows': expected a positive integer"),
    ('cpus = ["pentium"]', "key 'verify.cpus': unknown CPU profile 'pentium'"),
    ('enable = true', "unknown key 'verify.enable'"),
])
def test_recipe_refuses_a_bad_verify_table_naming_the_key(tiny_bert_dir, sentiment_csv, tmp_path,
                                                           table, needle):
    path = _recipe(tmp_path, tiny_bert_dir, sentiment_csv, f"\n[verify]\n{table}\n")
    with pytest.raises(UserError, match=re.escape(needle)):
        load_recipe(path)


def test_run_records_a_skip_and_exits_0_when_qemu_is_missing(tiny_bert_dir, sentiment_csv,
                                                              tmp_path):
    path = _recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("arm64-phone",))
    out = tmp_path / "run"
    empty = tmp_path / "no-qemu"
    empty.mkdir()
    result = runner.invoke(app, ["run", str(path), "--out", str(out)], env={"PATH": str(empty)})
    assert result.exit_code == 0, result.output
    record = json.loads((out / "artifacts/arm64-phone/verify.json").read_text())
    assert "apt-get install qemu-user-static" in record["skipped"]
    assert "profiles" not in record and (out / "artifacts/arm64-phone/bench.json").exists()
    report = (out / "report.md").read_text()
    assert "not checked: " in report and "qemu-user-static" in report
    if HAVE_QEMU:  # with qemu back on PATH the skipped check is to run again, and says why
        states = {s.id: state for s, state in plan_states(load_recipe(path), out)}
        assert states["verify-arm64-phone"] == "to run (emulation changed)"
        assert states["bench-arm64-phone"] == "cached"
    path.write_text(path.read_text() + "\n[verify]\nenabled = false\n")
    run_recipe(load_recipe(path), out, Console(quiet=True))  # turned off: its record goes
    assert not (out / "artifacts/arm64-phone/verify.json").exists()
    assert not (out / "stages/verify-arm64-phone").exists()
    assert "not checked" not in (out / "report.md").read_text()


@needs_qemu
@pytest.mark.slow  # ~20 s: a second emulated run; the gate's rule: test_verify.py
def test_run_refuses_a_target_into_refused_json_when_its_kernels_disagree(
        tiny_bert_dir, sentiment_csv, tmp_path, monkeypatch):
    real = verify.compare_logits

    def planted(host, emulated, labels, min_agreement):
        emulated = emulated.copy()
        emulated[0] = emulated[0][::-1]  # row 0's argmax flips, as a wrong kernel would
        return real(host, emulated, labels, min_agreement)

    monkeypatch.setattr(verify, "compare_logits", planted)
    path = _recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("x86-cpu", "arm64-phone"))
    out = tmp_path / "run"
    run_recipe(load_recipe(path), out, Console(quiet=True))
    refused = json.loads((out / "artifacts/arm64-phone/refused.json").read_text())
    assert refused["step"] == "verify-arm64-phone"
    assert "arm64 kernels (emulated)" in refused["reason"] and "87.5%" in refused["reason"]
    assert not list((out / "artifacts/arm64-phone").glob("*.tflite"))  # not kept
    report = json.loads((out / "report.json").read_text())
    assert [r["target"] for r in report["rows"]] == ["x86-cpu"]
    assert [r["target"] for r in report["refused"]] == ["arm64-phone"]
    assert "arm64-phone: refused" in (out / "report.md").read_text()
