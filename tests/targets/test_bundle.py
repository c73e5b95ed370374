"""Deployment bundles: checksums catch any change, and run.py predicts what the pipeline predicts
in a fresh virtual environment that has no torch and no transformers."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecompress.compress.evaluation.artifacts import export_artifact, open_evaluable
from edgecompress.errors import UserError
from edgecompress.targets import load_profile
from edgecompress.targets.bundle import make_bundle, verify_bundle
from tests.models import SENTENCES, tiny_plain
from tests.targets.conftest import needs_executorch


@pytest.fixture(scope="module", params=["x86-cpu", "arm64-phone",  # android-xnnpack: -m slow
                                        pytest.param("android-xnnpack",
                                                     marks=(needs_executorch, pytest.mark.slow))])
def built(request, tmp_path_factory):
    """(artifact folder, bundle dir) for a tiny plain encoder exported to the target."""
    profile = load_profile(request.param)
    if request.param == "x86-cpu":  # ONNX Runtime's dynamic int8 of this tiny random model
        # misses the gate on avx2-only CPUs (relative error 0.46 > 0.25 on an EPYC without
        # VNNI): what is bundled is the subject here, not one CPU's int8 outcome
        profile = dataclasses.replace(profile, scheme="fp32")
    root = tmp_path_factory.mktemp(f"bundle-{request.param}")
    export_artifact(tiny_plain(seed=3), profile, root / "artifact", source="tiny-plain")
    make_bundle(root / "artifact", profile, root / "bundle")
    return root / "artifact", root / "bundle"


def test_bundle_holds_artifact_tokenizer_labels_runner_and_checksums(built):
    _, bundle = built
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {manifest["artifact"], "tokenizer.json", "labels.json",
                                      "run.py"}
    assert [i["name"] for i in manifest["inputs"]] == ["input_ids", "attention_mask"]
    assert manifest["runtime_version"] and manifest["labels"] == ["0", "1"]
    assert verify_bundle(bundle) == []


@pytest.mark.parametrize("victim", ["artifact", "manifest.json", "SHA256SUMS", "run.py"])
def test_verify_reports_a_single_flipped_byte_in_any_file(built, victim, tmp_path):
    import shutil

    _, bundle = built
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    name = json.loads((copy / "manifest.json").read_text())["artifact"] if victim == "artifact" \
        else victim
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    assert verify_bundle(copy) != []


def test_verify_reports_missing_and_unlisted_files(built, tmp_path):
    import shutil

    _, bundle = built
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "labels.json").unlink()
    (copy / "extra.bin").write_bytes(b"x")
    problems = verify_bundle(copy)
    assert "labels.json: missing" in problems and "extra.bin: not part of the bundle" in problems


def test_make_bundle_refuses_an_existing_out_dir(built):
    artifact, bundle = built
    with pytest.raises(UserError, match="--force"):
        make_bundle(artifact, load_profile("x86-cpu"), bundle)


def _pipeline_logits(artifact_dir: Path) -> np.ndarray:
    from edgecompress.compress.evaluation.evaluate import predict_as_deployed

    manifest = json.loads((artifact_dir / "manifest.json").read_text())
    model = open_evaluable(artifact_dir / manifest["artifact"])
    return predict_as_deployed(model.runner, model.tokenizer, SENTENCES)


def test_run_py_predicts_like_the_pipeline_in_this_environment(built):
    artifact, bundle = built
    out = subprocess.run([sys.executable, str(bundle / "run.py"), *SENTENCES],
                         capture_output=True, text=True, check=True, cwd=bundle.parent)
    got = np.array([row["logits"] for row in json.loads(out.stdout)])
    np.testing.assert_allclose(got, _pipeline_logits(artifact), atol=1e-4)


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    """A fresh venv with only numpy, tokenizers and onnxruntime (no torch, no transformers)."""
    from importlib.metadata import version

    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"{p}=={version(p)}" for p in ("numpy", "tokenizers", "onnxruntime")]
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *pins], check=True,
                   capture_output=True)
    return venv


def test_run_py_needs_no_torch_and_matches_the_pipeline_in_a_fresh_venv(built, bare_venv):
    artifact, bundle = built
    manifest = json.loads((bundle / "manifest.json").read_text())
    if manifest["format"] != "onnx":
        pytest.skip("the bare venv carries onnxruntime only; TFLite and ExecuTorch run above "
                    "with their runtimes")
    python = str(bare_venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0, "the fresh venv must not have torch"
    out = subprocess.run([python, str(bundle / "run.py"), *SENTENCES], capture_output=True,
                         text=True, check=True)
    rows = json.loads(out.stdout)
    expected = _pipeline_logits(artifact)
    assert [r["label_id"] for r in rows] == list(expected.argmax(axis=1))
    np.testing.assert_allclose([r["logits"] for r in rows], expected, atol=1e-4)
    bench = subprocess.run([python, str(bundle / "run.py"), "--bench", "--runs", "3"],
                           capture_output=True, text=True, check=True)
    assert json.loads(bench.stdout)["p50_ms"] > 0


def _copy(bundle: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy, symlinks=True)
    return copy


def _add_sum(bundle: Path, name: str) -> None:
    with (bundle / "SHA256SUMS").open("a") as sums:
        sums.write(f"{'0' * 64}  {name}\n")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_bundle_carries_a_bundle_marker_that_verify_ignores_when_built(built):
    _, bundle = built
    marker = json.loads((bundle / ".edgecompress-output").read_text())
    assert (marker["tool"], marker["kind"]) == ("edgecompress", "bundle")
    assert ".edgecompress-output" not in (bundle / "SHA256SUMS").read_text()
    assert verify_bundle(bundle) == []


@pytest.mark.parametrize("entry, words", [
    ("/etc/hostname", "'/etc/hostname' is an absolute path"),
    ("../../../x", "'../../../x' contains '..'"),
    ("a/../../x", "'a/../../x' contains '..'"),
])
def test_verify_bundle_reports_and_never_reads_entry_when_it_points_outside(built, tmp_path,
                                                                            monkeypatch, entry,
                                                                            words):
    import edgecompress.targets.bundle as bundle_mod

    read = []
    real = bundle_mod.sha256_file
    monkeypatch.setattr(bundle_mod, "sha256_file", lambda p: read.append(p) or real(p))
    copy = _copy(built[1], tmp_path)
    _add_sum(copy, entry)
    problems = verify_bundle(copy)
    assert any(p.startswith("SHA256SUMS line") and p.endswith(words) for p in problems), problems
    assert read and all(copy.resolve() in Path(p).resolve().parents for p in read)


def test_verify_bundle_reports_entry_when_a_symlink_resolves_outside(built, tmp_path):
    copy = _copy(built[1], tmp_path)
    (tmp_path / "secret").write_text("outside")
    (copy / "link").symlink_to(tmp_path / "secret")
    _add_sum(copy, "link")
    assert "SHA256SUMS line 6: 'link' resolves outside the bundle" in verify_bundle(copy)


def test_verify_bundle_reports_directory_entry_and_unlisted_nested_file_when_present(built,
                                                                                     tmp_path):
    copy = _copy(built[1], tmp_path)
    (copy / "sub" / "deeper").mkdir(parents=True)
    (copy / "sub" / "deeper" / "extra.bin").write_bytes(b"x")
    _add_sum(copy, "sub")
    problems = verify_bundle(copy)
    assert "SHA256SUMS line 6: 'sub' names a directory" in problems
    assert "sub/deeper/extra.bin: not part of the bundle" in problems


@pytest.mark.parametrize("victim, content, expected", [
    ("SHA256SUMS", b"\xff\xfe\x00garbage", "SHA256SUMS: not UTF-8 text"),
    ("SHA256SUMS", b"not a sums line\n", "SHA256SUMS line 1: malformed"),
    ("manifest.json", b"\xff\xfe", "manifest.json: not UTF-8 text"),
    ("manifest.json", b"[1, 2]", "manifest.json: expected a JSON object"),
])
def test_verify_bundle_reports_one_problem_line_when_a_file_is_malformed(built, tmp_path, victim,
                                                                         content, expected):
    copy = _copy(built[1], tmp_path)
    (copy / victim).write_bytes(content)
    problems = verify_bundle(copy)
    assert any(p.startswith(expected) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_verify_bundle_raises_user_error_when_bundle_is_missing_or_a_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        verify_bundle(tmp_path / "gone")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        verify_bundle(tmp_path / "file")


def test_make_bundle_with_force_refuses_and_keeps_bytes_when_out_is_a_users_folder(built,
                                                                                   tmp_path):
    artifact, _ = built
    mine = tmp_path / "mine"
    (mine / "nested").mkdir(parents=True)
    (mine / "manifest.json").write_text('{"my": "notes"}')
    (mine / "nested" / "data.bin").write_bytes(bytes(range(256)))
    before = _tree(mine)
    with pytest.raises(UserError, match="not an edgecompress output"):
        make_bundle(artifact, load_profile(_target(artifact)), mine, force=True)
    assert _tree(mine) == before
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no half-built sibling left


def test_make_bundle_with_force_replaces_the_bundle_when_out_is_a_marked_bundle(built,
                                                                                tmp_path):
    artifact, bundle = built
    copy = _copy(bundle, tmp_path)
    (copy / "stale.txt").write_text("old")
    make_bundle(artifact, load_profile(_target(artifact)), copy, force=True)
    assert not (copy / "stale.txt").exists() and verify_bundle(copy) == []


def _target(artifact_dir: Path) -> str:
    return json.loads((artifact_dir / "manifest.json").read_text())["target"]


@pytest.mark.parametrize("content, words", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[]", "expected a JSON object, got list"),
    (b"{}", "artifact: missing"),
    (b'{"artifact": "../model.onnx"}', "expected a plain file name"),
    (b'{"artifact": "sub/model.onnx"}', "expected a plain file name"),
    (b'{"artifact": "model.onnx", "labels": "0,1"}', "labels: expected list"),
])
def test_make_bundle_raises_one_line_user_error_when_source_manifest_is_malformed(
        built, tmp_path, content, words):
    import shutil

    artifact, _ = built
    source = tmp_path / "artifact"
    shutil.copytree(artifact, source)
    target = _target(source)
    (source / "manifest.json").write_bytes(content)
    with pytest.raises(UserError) as info:
        make_bundle(source, load_profile(target), tmp_path / "out")
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bundle_manifest_lists_every_length_signature_when_target_has_buckets(built):
    _, bundle = built
    manifest = json.loads((bundle / "manifest.json").read_text())
    if manifest["format"] != "tflite":  # dynamic or bounded lengths: one entry point
        assert manifest["signatures"] == []
    else:  # arm64-phone: run.py picks among these (its predictions are checked above)
        assert manifest["signatures"] == [{"seq_len": n, "name": f"seq{n}"} for n in (32, 64, 128)]
        assert manifest["signature"] == "seq128"
