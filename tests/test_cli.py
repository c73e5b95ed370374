"""CLI behaviour: exit codes, one-line errors, JSON keys, no heavy imports for --help."""

import json
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
            "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime') if m in sys.modules))")
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
