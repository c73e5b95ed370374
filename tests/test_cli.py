"""CLI behaviour: exit codes, one-line errors, JSON keys, no heavy imports for --help."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app

runner = CliRunner()


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_help_imports_no_torch_when_cli_module_is_loaded():
    code = ("import sys; from typer.testing import CliRunner; from edgecompress.cli import app;"
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
            "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_data_list_names_both_registered_datasets():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    assert "rt-polarity" in result.output and "lee-similarity" in result.output


def test_inspect_json_has_per_layer_shapes_when_given_tiny_bert(tiny_bert_dir):
    result = runner.invoke(app, ["inspect", str(tiny_bert_dir), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert {"params", "embedding_params", "encoder_params", "layers"} <= set(info)
    assert info["layers"] == [{"heads": 4, "head_dim": 8, "ffn": 64}] * 2
    assert info["family"] == "bert" and info["targets"]["edgetpu"] == "yes"


def test_inspect_says_family_stages_and_targets_when_printed_for_people(tiny_bert_dir):
    result = runner.invoke(app, ["inspect", str(tiny_bert_dir)])
    assert result.exit_code == 0, result.output
    assert "family bert; stages: finetune, prune heads/ffn" in result.output
    assert "targets: android-xnnpack, arm64-phone, edgetpu, npu-a16w8, npu-int8, rpi5, x86-cpu" in \
        result.output or "target android-xnnpack: no — needs ExecuTorch" in result.output


def test_eval_json_reports_accuracy_ci_and_full_agreement_when_reference_is_itself(
        tiny_plain_dir, sentiment_csv):
    result = runner.invoke(app, ["eval", str(tiny_plain_dir), "--dataset", str(sentiment_csv),
                                 "--reference", str(tiny_plain_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n"] == 8
    assert data["agreement"] == 1.0
    low, high = data["ci95"]
    assert 0.0 <= low <= data["accuracy"] <= high <= 1.0


def test_finetune_writes_a_loadable_checkpoint_and_reuses_it_when_rerun(tiny_bert_dir,
                                                                        sentiment_csv, tmp_path):
    out = tmp_path / "teacher"
    args = ["finetune", str(tiny_bert_dir), "--dataset", str(sentiment_csv), "--out", str(out),
            "--max-steps", "3", "--batch-size", "8"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    manifest = json.loads((out / "finetune.json").read_text())
    assert manifest["steps"] == 3 and manifest["dev"]["n"] == 8
    assert manifest["labels"] == ["neg", "pos"]
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    inspect = runner.invoke(app, ["inspect", str(out), "--json"])
    assert json.loads(inspect.output)["task"] == "classification"


def test_finetune_refuses_an_out_dir_holding_something_else(tiny_bert_dir, sentiment_csv,
                                                            tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = runner.invoke(app, ["finetune", str(tiny_bert_dir), "--dataset", str(sentiment_csv),
                                 "--out", str(tmp_path), "--max-steps", "1"])
    assert "--force" in _one_line_error(result)
    assert (tmp_path / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("make_bad, message", [
    (lambda good, tmp: tmp / "missing", "model not found"),
    (lambda good, tmp: tmp, "no config.json"),
])
def test_eval_exits_2_with_one_line_when_model_path_is_bad(make_bad, message, tiny_bert_dir,
                                                           sentiment_csv, tmp_path):
    bad = make_bad(tiny_bert_dir, tmp_path)
    result = runner.invoke(app, ["eval", str(bad), "--dataset", str(sentiment_csv)])
    assert message in _one_line_error(result)


def test_eval_exits_2_when_safetensors_is_truncated(tiny_bert_dir, sentiment_csv, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = runner.invoke(app, ["eval", str(broken), "--dataset", str(sentiment_csv)])
    assert "safetensors" in _one_line_error(result)


def test_eval_exits_2_when_architecture_is_unsupported(tiny_bert_dir, sentiment_csv, tmp_path):
    other = tmp_path / "t5"
    shutil.copytree(tiny_bert_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "t5"
    (other / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["inspect", str(other)])
    assert "unsupported architecture" in _one_line_error(result)


def test_eval_exits_2_when_dataset_name_is_unknown(tiny_bert_dir):
    result = runner.invoke(app, ["eval", str(tiny_bert_dir), "--dataset", "imdb-huge"])
    line = _one_line_error(result)
    assert "imdb-huge" in line and "rt-polarity" in line


def test_eval_exits_2_when_csv_lacks_the_named_column(tiny_bert_dir, sentiment_csv):
    result = runner.invoke(app, ["eval", str(tiny_bert_dir), "--dataset", str(sentiment_csv),
                                 "--text-col", "review"])
    assert "review" in _one_line_error(result)


# --- export / bench / report ------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported_dir(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "x86"
    result = runner.invoke(app, ["export", str(tiny_bert_dir), "--target", "x86-cpu",
                                 "--dataset", "rt-polarity", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_export_writes_a_verified_artifact_with_manifest_and_tokenizer(exported_dir):
    manifest = json.loads((exported_dir / "manifest.json").read_text())
    assert manifest["target"] == "x86-cpu" and manifest["format"] == "onnx"
    assert manifest["parity"]["max_abs_diff"] <= manifest["parity"]["tolerance"]
    assert (exported_dir / "model.onnx").stat().st_size == manifest["size_bytes"]
    assert (exported_dir / "tokenizer.json").exists()


def test_eval_runs_an_onnx_artifact_with_the_tokenizer_beside_it(exported_dir, tiny_bert_dir,
                                                                 sentiment_csv):
    result = runner.invoke(app, ["eval", str(exported_dir / "model.onnx"), "--dataset",
                                 str(sentiment_csv), "--reference", str(tiny_bert_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["agreement"] == 1.0


def test_bench_json_has_the_documented_keys(exported_dir):
    result = runner.invoke(app, ["bench", str(exported_dir / "model.onnx"), "--target", "x86-cpu",
                                 "--runs", "5", "--warmup", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    keys = {"p50_ms", "p90_ms", "p99_ms", "size_bytes", "gzip_bytes", "peak_rss_mb", "threads",
            "runtime"}
    assert keys <= set(data)
    assert 0 < data["p50_ms"] <= data["p90_ms"] <= data["p99_ms"]
    assert data["threads"] == 2 and data["runtime"] == "onnxruntime"


def test_export_refuses_an_out_dir_holding_a_different_run_unless_forced(exported_dir,
                                                                        tiny_plain_dir):
    before = (exported_dir / "model.onnx").read_bytes()
    refused = runner.invoke(app, ["export", str(tiny_plain_dir), "--target", "x86-cpu",
                                  "--dataset", "rt-polarity", "--out", str(exported_dir)])
    assert "--force" in _one_line_error(refused)
    assert (exported_dir / "model.onnx").read_bytes() == before


def test_export_exits_2_when_target_is_unknown(tiny_bert_dir, tmp_path):
    result = runner.invoke(app, ["export", str(tiny_bert_dir), "--target", "moon-base",
                                 "--out", str(tmp_path / "out")])
    line = _one_line_error(result)
    assert "moon-base" in line and "x86-cpu" in line
    assert not (tmp_path / "out").exists()


def test_export_exits_2_naming_file_and_key_when_profile_is_malformed(tiny_bert_dir, tmp_path):
    profile = tmp_path / "bad.toml"
    profile.write_text('name = "bad"\nformat = "onnx"\nthreads = "four"\n')
    result = runner.invoke(app, ["export", str(tiny_bert_dir), "--target", str(profile),
                                 "--out", str(tmp_path / "out")])
    line = _one_line_error(result)
    assert "bad.toml" in line


def test_bench_exits_2_when_artifact_is_not_onnx(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_text("this is not a model")
    result = runner.invoke(app, ["bench", str(fake), "--target", "x86-cpu"])
    assert "model.onnx" in _one_line_error(result)


def test_eval_exits_2_when_artifact_has_an_unknown_suffix(tmp_path, sentiment_csv):
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"\x00\x01")
    result = runner.invoke(app, ["eval", str(fake), "--dataset", str(sentiment_csv)])
    assert "not an ONNX, TFLite, ExecuTorch or OpenVINO artifact" in _one_line_error(result)


def test_report_exits_2_when_directory_is_not_a_run(tmp_path):
    assert "not a run directory" in _one_line_error(runner.invoke(app, ["report", str(tmp_path)]))


def test_bundle_then_verify_exits_0_and_1_after_a_flipped_byte(exported_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported_dir, run / "artifacts" / "x86-cpu")
    bundle = tmp_path / "bundle"
    made = runner.invoke(app, ["bundle", str(run), "--target", "x86-cpu", "--out", str(bundle)])
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["bundle", "verify", str(bundle)]).exit_code == 0
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[1000] ^= 0x10
    (bundle / "model.onnx").write_bytes(bytes(data))
    broken = runner.invoke(app, ["bundle", "verify", str(bundle)])
    assert broken.exit_code == 1 and "model.onnx: changed" in broken.output


def test_bundle_exits_2_when_the_run_has_no_artifact_for_the_target(exported_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported_dir, run / "artifacts" / "x86-cpu")
    result = runner.invoke(app, ["bundle", str(run), "--target", "rpi5", "--out",
                                 str(tmp_path / "b")])
    assert "has: x86-cpu" in _one_line_error(result)


def test_eval_with_reference_prints_paired_delta_and_interval_when_json(tiny_bert_dir,
                                                                        sentiment_csv):
    import json as _json

    result = runner.invoke(app, ["eval", str(tiny_bert_dir), "--dataset", str(sentiment_csv),
                                 "--split", "test", "--reference", str(tiny_bert_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = _json.loads(result.output)
    # a model against itself: no disagreement, delta 0, an interval around 0, not significant
    assert data["delta"] == 0.0 and data["paired"]["disagreements"] == 0
    low, high = data["delta_ci95"]
    assert low <= 0.0 <= high and data["paired"]["significant"] is False
    assert data["agreement"] == 1.0


def test_eval_json_names_the_host_that_produced_the_predictions(tiny_bert_dir, sentiment_csv):
    import json as _json

    result = runner.invoke(app, ["eval", str(tiny_bert_dir), "--dataset", str(sentiment_csv),
                                 "--split", "test", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    host = _json.loads(result.output)["host"]
    assert host["threads"] == 1 and host["cpu_model"] and host["arch"]
    assert set(host) >= {"isa", "cores", "os", "python", "runtimes"}
    assert isinstance(host["isa"], list)


def test_importing_the_package_changes_no_environment_variable_when_imported_in_a_fresh_process():
    code = ("import os, json; before = dict(os.environ); import edgecompress, edgecompress.cli, "
            "edgecompress.compress.models.loading, edgecompress.targets; "
            "print(json.dumps(sorted(k for k in set(before) | set(os.environ) "
            "if before.get(k) != os.environ.get(k))))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_loading_a_checkpoint_never_reaches_a_hub_when_offline_mode_is_not_set(tiny_bert_dir):
    # The hub address points at a closed local port: any request would fail the load.
    code = ("import sys; from edgecompress.compress.models.loading import load_model; "
            "m = load_model(sys.argv[1]); print(m.kind, len(m.labels))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tiny_bert_dir.parent / "hf-home"))
    done = subprocess.run([sys.executable, "-c", code, str(tiny_bert_dir)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "hf"
