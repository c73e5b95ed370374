"""Bad inputs to export, bench, report, report compare, bundle, bundle verify and demo."""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import cases
from tests.adversarial.test_stage_commands import _cmd


def _export(*extra, model="@bert", target="x86-cpu", out="@tmp/export"):
    return _cmd("export", model, "--target", target, "--out", out, *extra)


EXPORT = cases(
    ("export-missing-model", _export(model="@tmp/nowhere"), "model not found"),
    ("export-no-tokenizer", _export(model="@no_tokenizer"), "no tokenizer files"),
    ("export-truncated", _export(model="@truncated"), "not a valid safetensors"),
    ("export-unknown-target", _export(target="moon-base"), "moon-base"),
    ("export-bad-profile", _export(target="@profile_threads"), "bad-threads.toml"),
    ("export-broken-profile", _export(target="@profile_toml"), "not valid TOML"),
    ("export-dotdot-profile-name", _export(target="@profile_dotdot"), "'../x'"),
    ("export-unknown-scheme", _export("--scheme", "int3"), "int3"),
    ("export-out-file", _export(out="@a_file"), "is a file"),
    ("export-out-under-file", lambda w, t: _export(out=f"{w.a_file}/x")(w, t), "under a file"),
    ("export-out-foreign", _export(out="@foreign"), "--force"),
    ("export-force-foreign", _export("--force", out="@foreign"), "not an edgecompress output"),
)

BENCH = cases(
    ("bench-missing", _cmd("bench", "@tmp/model.onnx", "--target", "x86-cpu"), "not found"),
    ("bench-garbage-onnx", _cmd("bench", "@fake_onnx", "--target", "x86-cpu"), "model.onnx"),
    ("bench-garbage-tflite", _cmd("bench", "@fake_tflite", "--target", "arm64-phone"),
     "model.tflite"),
    ("bench-wrong-format", _cmd("bench", "@fake_onnx", "--target", "arm64-phone"), "tflite"),
    ("bench-unknown-target", _cmd("bench", "@fake_onnx", "--target", "moon-base"), "moon-base"),
    ("bench-runs-0", _cmd("bench", "@fake_onnx", "--target", "x86-cpu", "--runs", "0"),
     "runs must be >= 1"),
    ("bench-warmup-negative", _cmd("bench", "@fake_onnx", "--target", "x86-cpu", "--warmup",
                                   "-1"), "warmup"),
)

REPORT = cases(
    ("report-missing-dir", _cmd("report", "@tmp/nowhere"), "nowhere"),
    ("report-empty-dir", _cmd("report", "@empty_run"), "not a run directory"),
    ("report-a-file", _cmd("report", "@a_file"), "a-file.txt"),
    ("report-half-written-run", _cmd("report", "@half_run"), "run.json"),
    ("report-run-without-stages", _cmd("report", "@stub_run"), "stub-run"),
    ("report-device-results-missing", _cmd("report", "@mini_run", "--device-results",
                                           "@tmp/none.json"), "none.json"),
    ("report-device-results-garbage", _cmd("report", "@mini_run", "--device-results",
                                           "@device_bad"), "device.json"),
    ("report-compare-missing", _cmd("report", "compare", "@tmp/a", "@tmp/b"), "not found"),
    ("report-compare-not-runs", _cmd("report", "compare", "@empty_run", "@empty_run"),
     "empty-run"),
    ("report-compare-garbage", _cmd("report", "compare", "@garbage_report", "@garbage_report"),
     "garbage-report.json"),
)

BUNDLE = cases(
    ("bundle-missing-run", _cmd("bundle", "@tmp/nowhere", "--target", "x86-cpu", "--out",
                                "@tmp/b"), "no artifact for target x86-cpu"),
    ("bundle-no-artifact", _cmd("bundle", "@empty_run", "--target", "x86-cpu", "--out",
                                "@tmp/b"), "has: none"),
    ("bundle-unknown-target", _cmd("bundle", "@empty_run", "--target", "moon-base", "--out",
                                   "@tmp/b"), "moon-base"),
    ("bundle-verify-missing", _cmd("bundle", "verify", "@tmp/nowhere"), "bundle not found"),
    ("bundle-verify-file", _cmd("bundle", "verify", "@a_file"), "is a file"),
    # verify's contract: a bundle that does not check out is exit 1 (tampered), not a usage error
    ("bundle-verify-not-a-bundle", _cmd("bundle", "verify", "@bundle_none"), "not a bundle", 1),
    ("bundle-verify-dotdot-entry", _cmd("bundle", "verify", "@bundle_dotdot"), "contains '..'", 1),
)

DEMO = cases(
    ("demo-out-file", _cmd("demo", "--out", "@a_file"), "is a file"),
    ("demo-out-under-file", lambda w, t: ["demo", "--out", f"{w.a_file}/run"], "under a file"),
    ("demo-out-foreign", _cmd("demo", "--out", "@foreign"), "--force"),
)


@pytest.mark.parametrize("build, said, code", EXPORT + BENCH + REPORT + BUNDLE + DEMO)
def test_bad_input_is_refused_in_one_line_when_given_to_a_delivery_command(
        build, said, code, world, tmp_path, expect_refusal):
    expect_refusal(build(world, tmp_path), said, code)
