"""Deployment bundles: checksums catch any change, and run.py predicts what the pipeline predicts
in a fresh virtual environment that has no torch and no transformers."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecompress.compress.core.artifacts import export_artifact, open_evaluable
from edgecompress.errors import UserError
from edgecompress.targets import load_profile
from edgecompress.targets.bundle import make_bundle, verify_bundle
from tests.models import SENTENCES, tiny_plain


@pytest.fixture(scope="module", params=["x86-cpu", "arm64-phone"])
def built(request, tmp_path_factory):
    """(artifact folder, bundle dir) for a tiny plain encoder exported to the target."""
    profile = load_profile(request.param)
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
    from edgecompress.compress.core.evaluate import predict

    manifest = json.loads((artifact_dir / "manifest.json").read_text())
    model = open_evaluable(artifact_dir / manifest["artifact"])
    return predict(model.runner, model.tokenizer, SENTENCES)


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
        pytest.skip("the bare venv carries onnxruntime only; TFLite runs above with ai-edge-litert")
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
