from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.models.loading import load_model
from edgecompress.compress.prune.surgery import layer_shapes

runner = CliRunner()


def _prune(model_dir, out, *args):
    return runner.invoke(app, ["prune", str(model_dir), "--out", str(out), *args])


def test_checkpoint_and_manifest_written_when_pruning_tiny_bert(tiny_bert_dir, sentiment_csv,
                                                                 tmp_path):
    out = tmp_path / "pruned"
    result = _prune(tiny_bert_dir, out, "--heads", "0.5", "--ffn", "0.25", "--dataset",
                    str(sentiment_csv), "--samples", "16", "--vocab-corpus", str(sentiment_csv))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "prune.json").read_text())
    assert manifest["params"]["after"] < manifest["params"]["before"]
    assert manifest["file_bytes"]["after"] < manifest["file_bytes"]["before"]
    assert sum(manifest["shapes_after"]["heads"]) == 4  # half of 2 x 4
    assert manifest["importance"] == {"method": "gradient", "samples": 16, "labels": "data"}
    assert manifest["accuracy"]["before"]["n"] == 8 and "after" in manifest["accuracy"]
    assert layer_shapes(load_model(out)) == manifest["shapes_after"]


def test_size_only_sparsity_reported_when_nm_asked(tiny_plain_dir, tmp_path):
    out = tmp_path / "sparse"
    result = _prune(tiny_plain_dir, out, "--nm", "2:4", "--no-eval", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["sparsity"]["zero_fraction"] == pytest.approx(0.5, abs=0.01)
    assert manifest["sparsity"]["effect"].startswith("size-only")
    assert manifest["file_bytes"]["ratio"] == 1.0 and manifest["gzip_bytes"]["ratio"] < 1.0


@pytest.mark.parametrize("args, message", [
    (["--heads", "1.0"], "must be in [0, 1)"),
    (["--ffn", "-0.2"], "must be in [0, 1)"),
    (["--layers", "1"], "must be in [0, 1)"),
    (["--drop-heads", "1:0,1,2,3"], "without dropping the layer"),
    (["--nm", "4:2"], "0 < N < M"),
])
def test_exit_2_with_one_line_when_input_bad(tiny_bert_dir, tmp_path, args, message):
    result = _prune(tiny_bert_dir, tmp_path / "out", "--no-eval", *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_exit_2_when_vocabulary_corpus_empty(tiny_bert_dir, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = _prune(tiny_bert_dir, tmp_path / "out", "--no-eval", "--vocab-corpus", str(empty))
    assert result.exit_code == 2 and "has no text" in result.output
    assert not (tmp_path / "out").exists()


def test_exit_2_when_output_exists_without_force(tiny_bert_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep me")
    result = _prune(tiny_bert_dir, tmp_path / "out", "--no-eval")
    assert result.exit_code == 2 and "--force" in result.output


def test_params_within_budget_when_target_params_given(tiny_plain_dir, tmp_path):
    out = tmp_path / "budget"
    # tiny_plain: 993,858 params, almost all in the embedding; ask to shave 10 k off the layers
    result = _prune(tiny_plain_dir, out, "--target-params", "983000", "--importance",
                    "magnitude", "--no-eval", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["params"]["after"] <= 983_000 < manifest["params"]["before"]
    assert manifest["budget"]["met"] is True and 0 < manifest["budget"]["fraction"] < 1


def test_existing_result_reused_when_same_request_rerun(tiny_plain_dir, tmp_path):
    out = tmp_path / "again"
    args = ("--drop-heads", "0:1", "--no-eval", "--json")
    first = json.loads(_prune(tiny_plain_dir, out, *args).output)
    second = _prune(tiny_plain_dir, out, *args)
    assert second.exit_code == 0 and json.loads(second.output) == first
