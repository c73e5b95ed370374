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


# -- `report` on what is not a run (issue 26, item 5): one line naming the file, exit 2, nothing
# written; a report with the problem in its notes is not an answer.

GOOD_EVAL = {"accuracy": 0.82, "ci95": [0.8, 0.84], "n": 2000}
GOOD_MANIFEST = {"target": "x86-cpu", "format": "onnx", "scheme": "int8-dynamic",
                 "runtime": "onnxruntime", "artifact": "model.onnx"}
GOOD_BENCH = {"p50_ms": 8.0, "p90_ms": 9.0, "p99_ms": 10.0, "size_bytes": 23_000_000}


def _run_files(broken: dict[str, object]) -> dict[str, object]:
    """A finished run's JSON files (relative path -> content) with `broken` ones replaced;
    None removes a file."""
    files = {"run.json": {"kind": "edgecompress-run", "model": "m", "dataset": "d"},
             "teacher/eval.json": {**GOOD_EVAL, "format": "torch", "scheme": "fp32"},
             "artifacts/x86-cpu/manifest.json": GOOD_MANIFEST,
             "artifacts/x86-cpu/eval.json": {**GOOD_EVAL, "agreement": 0.99},
             "artifacts/x86-cpu/bench.json": GOOD_BENCH}
    files.update(broken)
    return {path: content for path, content in files.items() if content is not None}


BAD_RUNS = {
    "manifest_empty_object": _run_files({"artifacts/x86-cpu/manifest.json": {}}),
    "manifest_list": _run_files({"artifacts/x86-cpu/manifest.json": []}),
    "manifest_string": _run_files({"artifacts/x86-cpu/manifest.json": "x86-cpu"}),
    "manifest_no_target": _run_files({"artifacts/x86-cpu/manifest.json": {"format": "onnx"}}),
    "no_rows": _run_files({"artifacts/x86-cpu/manifest.json": None,
                          "artifacts/x86-cpu/eval.json": None,
                          "artifacts/x86-cpu/bench.json": None}),
    "teacher_eval_half": _run_files({"teacher/eval.json": {"accuracy": 0.82}}),
    "teacher_eval_empty": _run_files({"teacher/eval.json": {}}),
    "artifact_eval_empty": _run_files({"artifacts/x86-cpu/eval.json": {}}),
    "artifact_eval_cut": _run_files({"artifacts/x86-cpu/eval.json": b'{"accuracy": 0.8'}),
    "artifact_eval_percent": _run_files({"artifacts/x86-cpu/eval.json": {"accuracy": 82.0,
                                                                            "n": 2000}}),
    "bench_empty": _run_files({"artifacts/x86-cpu/bench.json": {}}),
    "run_json_empty": _run_files({"run.json": {}}),
    "refused_empty": _run_files({"artifacts/edgetpu/refused.json": {}}),
    "stage_record_cut": _run_files({"stages/prune/stage.json": b'{"stage": "pr'}),
    "device_result_cut": _run_files({"device-results/pixel8.json": b"[1, 2"}),
    "verify_list": _run_files({"artifacts/x86-cpu/verify.json": []}),
    "per_class_short": _run_files({"artifacts/x86-cpu/eval.json": {
        **GOOD_EVAL, "per_class": {"labels": ["neg", "pos"], "recall": [0.8], "precision":
                                   [0.8, 0.8], "f1": [0.8, 0.8], "support": [1, 1]}}}),
    "confusion_ragged": _run_files({"teacher/eval.json": {
        **GOOD_EVAL, "per_class": {"labels": ["neg", "pos"], "recall": [0.8, 0.8], "precision":
                                   [0.8, 0.8], "f1": [0.8, 0.8], "support": [1, 1]},
        "confusion": [[1, 0], [1]]}}),
}


@pytest.fixture(scope="session")
def bad_runs(world) -> dict[str, str]:
    """One run folder per entry of BAD_RUNS, inside the world (so every case checks them)."""
    import json

    root = world.root / "bad-runs"
    for name, files in BAD_RUNS.items():
        for rel, content in files.items():
            path = root / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else
                             json.dumps(content).encode())
    return {name: str(root / name) for name in BAD_RUNS}


NOT_RUNS = [
    ("manifest_empty_object", "artifacts/x86-cpu/manifest.json is empty ({})"),
    ("manifest_list", "manifest.json: expected a JSON object, got list"),
    ("manifest_string", "manifest.json: expected a JSON object, got str"),
    ("manifest_no_target", "manifest.json lacks a 'target'"),
    ("no_rows", "nothing to report"),
    ("teacher_eval_half", "teacher/eval.json lacks 'n'"),
    ("teacher_eval_empty", "teacher/eval.json lacks 'accuracy' and 'n'"),
    ("artifact_eval_empty", "artifacts/x86-cpu/eval.json lacks 'accuracy' and 'n'"),
    ("artifact_eval_cut", "artifacts/x86-cpu/eval.json is not valid JSON"),
    ("artifact_eval_percent", "accuracy 82.0 on n = 2000 is not a measurement"),
    ("bench_empty", "bench.json lacks 'p50_ms'"),
    ("run_json_empty", "run.json is empty"),
    ("refused_empty", "refused.json lacks a 'reason'"),
    ("stage_record_cut", "stages/prune/stage.json is not valid JSON"),
    ("device_result_cut", "pixel8.json is not valid JSON"),
    ("verify_list", "verify.json: expected a JSON object"),
    ("per_class_short", "'per_class.recall' should be 2 numbers"),
    ("confusion_ragged", "'confusion' should be a 2 x 2 table"),
]

REPORT_NOT_A_RUN = cases(
    *[(f"report-{name.replace('_', '-')}", lambda b, t, name=name: ["report", b[name]], said)
      for name, said in NOT_RUNS],
    *[(f"report-json-{name.replace('_', '-')}",
       lambda b, t, name=name: ["report", b[name], "--json"], said)
      for name, said in NOT_RUNS[:5]],
)


@pytest.mark.parametrize("build, said, code", REPORT_NOT_A_RUN)
def test_report_refuses_in_one_line_when_the_folder_is_not_a_finished_run(
        build, said, code, bad_runs, tmp_path, expect_refusal):
    expect_refusal(build(bad_runs, tmp_path), said, code)


# -- wording (issue 26): an edited SHA256SUMS is named, not the unchanged file it lists

def _bundle(root, sums_for_labels: str | None = None, labels: bytes = b'["neg", "pos"]') -> str:
    import hashlib
    import json

    root.mkdir(parents=True)
    (root / "labels.json").write_bytes(b'["neg", "pos"]')
    digest = hashlib.sha256(b'["neg", "pos"]').hexdigest()
    manifest = json.dumps({"files": {"labels.json": digest}}).encode()
    (root / "manifest.json").write_bytes(manifest)
    (root / "SHA256SUMS").write_text(f"{hashlib.sha256(manifest).hexdigest()}  manifest.json\n"
                                     f"{sums_for_labels or digest}  labels.json\n")
    (root / "labels.json").write_bytes(labels)
    return str(root)


@pytest.fixture(scope="session")
def bundles(world) -> dict[str, str]:
    root = world.root / "bundles"
    return {"sums_edited": _bundle(root / "sums-edited", sums_for_labels="1" * 64),
            "labels_edited": _bundle(root / "labels-edited", labels=b'["neg", "POS"]')}


@pytest.mark.parametrize("name, said", [
    ("sums_edited", "bundle problem: SHA256SUMS: edited: its line for labels.json does not match "
                    "labels.json, which still matches manifest.json"),
    ("labels_edited", "bundle problem: labels.json: changed (sha256 differs)"),
])
def test_bundle_verify_names_the_file_that_was_edited_when_a_digest_differs(
        name, said, bundles, expect_refusal):
    assert expect_refusal(["bundle", "verify", bundles[name]], said, 1) == said
