"""`edgecompress verify`: the same rows on this host and on emulated arm64 kernels, compared;
bad input refused in one line with nothing written. Emulated cases need qemu (skipped with the
reason where it is missing) and build the environment into the cache on first use."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.evaluation.verify import compare_logits
from edgecompress.targets import emulation

HAVE_QEMU = any(shutil.which(n) for n in emulation.load_spec("arm64").qemu)
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-aarch64 not installed (apt-get "
                                                      "install qemu-user-static)")
runner = CliRunner()


def test_compare_logits_counts_disagreements_and_the_largest_difference_when_one_row_flips():
    host = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.5, 0.4]])
    emulated = host.copy()
    emulated[3] = [0.4, 0.5]  # argmax flips
    found = compare_logits(host, emulated, (0, 1, 0, 0), min_agreement=0.95)
    assert found["agreement"] == 0.75 and found["disagreements"] == 1
    assert found["max_abs_diff"] == pytest.approx(0.1)
    assert found["min_cosine"] < 1.0 and found["accuracy"]["correct"] == 3
    assert not found["passed"]
    assert compare_logits(host, host, None, 1.0)["passed"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """120 labelled rows (LABEL_0 / LABEL_1, the tiny BERT's names), test split of 40."""
    words = ["good", "great", "fine", "bad", "awful", "dull", "funny", "clever", "boring"]
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("verify-data") / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        for i in range(120):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 20)))
            writer.writerow([text, f"LABEL_{i % 2}",
                             "train" if i < 60 else ("dev" if i < 80 else "test")])
    return path


@pytest.fixture(scope="module")
def quantized(tiny_bert_dir, data, tmp_path_factory):
    """target -> artifact folder: TFLite dynamic int8 for arm64-phone, ONNX dynamic int8 for an
    arm64 ONNX Runtime profile (x86-cpu's, with verify_isa), and ONNX for x86-cpu itself."""
    root = tmp_path_factory.mktemp("verify-artifacts")
    source = Path(__file__).resolve().parents[3] / "edgecompress/targets/profiles/x86-cpu.toml"
    arm_onnx = root / "arm64-onnx.toml"
    arm_onnx.write_text(source.read_text().replace('name = "x86-cpu"', 'name = "arm64-onnx"\n'
                                                   'verify_isa = "arm64"'))
    folders = {}
    for target in ("arm64-phone", str(arm_onnx), "x86-cpu"):
        out = root / Path(target).stem
        result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", target,
                                     "--dataset", str(data), "--out", str(out)])
        assert result.exit_code == 0, result.output
        folders[Path(target).stem] = out
    return folders


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _refused(args: list[str], folder: Path, needle: str, **env) -> None:
    before = _listing(folder)
    result = runner.invoke(app, ["verify", *args], env=env or None)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert _listing(folder) == before  # nothing written beside the artifact


def test_verify_refuses_a_target_that_is_not_arm64(quantized, data):
    folder = quantized["x86-cpu"]
    _refused([str(folder / "model.onnx"), "--dataset", str(data)], folder,
             "not an arm64 target")


def test_verify_refuses_an_artifact_without_a_dataset_when_none_is_given(quantized):
    folder = quantized["arm64-phone"]
    _refused([str(folder / "model.tflite")], folder, "pass --dataset")


def test_verify_names_the_package_when_qemu_is_missing(quantized, data, tmp_path):
    folder = quantized["arm64-phone"]
    _refused([str(folder), "--dataset", str(data)], folder, "apt-get install qemu-user-static",
             PATH=str(tmp_path))


@needs_qemu
def test_verify_refuses_a_broken_cache_and_writes_nothing(quantized, data, tmp_path):
    folder = quantized["arm64-phone"]
    spec = emulation.load_spec("arm64")
    broken = tmp_path / "cache" / "emulation" / f"arm64-{spec.key}"
    broken.mkdir(parents=True)
    _refused([str(folder), "--dataset", str(data)], folder, "is broken",
             EDGECOMPRESS_CACHE=str(tmp_path / "cache"))
    assert list(broken.iterdir()) == []


def test_verify_refuses_rows_below_one(quantized, data):
    folder = quantized["arm64-phone"]
    _refused([str(folder), "--dataset", str(data), "--rows", "0"], folder, "rows")


def test_verify_refuses_an_unknown_cpu_profile(quantized, data):
    folder = quantized["arm64-phone"]
    _refused([str(folder), "--dataset", str(data), "--cpu", "pentium"], folder,
             "unknown CPU profile 'pentium'")


@needs_qemu
@pytest.mark.parametrize("name, extra", [("arm64-phone", []), ("arm64-onnx", ["--target"])])
def test_verify_agrees_with_the_host_on_two_cpu_profiles_when_kernels_are_arm64(quantized, data,
                                                                                 name, extra):
    folder = quantized[name]
    args = [str(folder), "--dataset", str(data), "--rows", "24", "--json"]
    if extra:
        args += ["--target", str(folder.parent / f"{name}.toml")]
    result = runner.invoke(app, ["verify", *args])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    (record,) = found["results"]
    assert record["rows"] == 24 and record["scheme"] == "dynamic-int8"
    assert [p["cpu"] for p in record["profiles"]] == ["cortex-a76", "armv9-i8mm"]
    for profile in record["profiles"]:
        assert profile["agreement"] >= record["gate"]["min_agreement"] and profile["passed"]
        assert 0 <= profile["max_abs_diff"] < 0.5 and profile["min_cosine"] > 0.99
        assert profile["accuracy"]["ci95"][0] <= profile["accuracy"]["accuracy"]
    assert "sme" not in record["profiles"][1]["features"]
    assert record["profiles"][1]["qemu_cpu"].startswith("max")
    assert not (folder / "verify.json").exists()  # a lone artifact: printed, not written


@needs_qemu
def test_verify_writes_verify_json_for_each_arm64_target_of_a_run(quantized, data, tmp_path):
    run = tmp_path / "run"
    (run / "artifacts").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"kind": "edgecompress-run", "dataset": str(data)}))
    for name in ("arm64-phone", "x86-cpu"):
        shutil.copytree(quantized[name], run / "artifacts" / name)
    result = runner.invoke(app, ["verify", str(run), "--rows", "8", "--cpu", "cortex-a53",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert [r["target"] for r in json.loads(result.stdout)["results"]] == ["arm64-phone"]
    written = json.loads((run / "artifacts" / "arm64-phone" / "verify.json").read_text())
    assert written["profiles"][0]["cpu"] == "cortex-a53" and written["rows"] == 8
    assert not (run / "artifacts" / "x86-cpu" / "verify.json").exists()


@needs_qemu
def test_verify_runs_a_bundles_own_runner_when_given_the_bundle(quantized, data, tmp_path):
    from edgecompress.targets import load_profile
    from edgecompress.targets.bundle import make_bundle, verify_bundle

    bundle = tmp_path / "bundle"
    make_bundle(quantized["arm64-phone"], load_profile("arm64-phone"), bundle)
    result = runner.invoke(app, ["verify", str(bundle), "--dataset", str(data), "--rows", "8",
                                 "--cpu", "neoverse-n1", "--json"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["results"]
    assert record["target"] == "arm64-phone" and record["profiles"][0]["agreement"] == 1.0
    assert verify_bundle(bundle) == []  # the bundle is left exactly as it was
