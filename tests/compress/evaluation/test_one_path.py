"""One accuracy per artifact: `edgecompress eval`, a run's eval stage and benchmarks/anchors.py
measure a dynamic-int8 ONNX artifact the same way, to the digit; and an artifact whose manifest
names another number of classes than the model has outputs is refused as corrupt."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.errors import UserError

runner = CliRunner()
DATASET = "rt-polarity"  # 2,000 real test sentences: enough for batching to change predictions


@pytest.fixture(scope="module")
def int8_artifact(tiny_bert_dir, tmp_path_factory):
    """A tiny BERT exported for x86-cpu (dynamic int8 ONNX) with its manifest and tokenizer."""
    out = tmp_path_factory.mktemp("one-path") / "x86"
    result = runner.invoke(app, ["export", str(tiny_bert_dir), "--target", "x86-cpu",
                                 "--dataset", DATASET, "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scheme"].startswith("dynamic-int8")
    return out / manifest["artifact"]


def test_eval_run_stage_and_anchors_agree_to_the_digit_when_given_one_int8_artifact(
        int8_artifact, tmp_path):
    from benchmarks import anchors
    from edgecompress.compress.data.dataref import DataRef
    from edgecompress.compress.pipeline.stages import Context
    from edgecompress.compress.pipeline.target_stages import EvalConfig, eval_stage

    cli = runner.invoke(app, ["eval", str(int8_artifact), "--dataset", DATASET, "--json"])
    assert cli.exit_code == 0, cli.output
    by_cli = json.loads(cli.output)

    folder = tmp_path / "x86"
    shutil.copytree(int8_artifact.parent, folder)
    made = eval_stage({"model": str(folder / int8_artifact.name)}, EvalConfig(),
                      Context(DataRef(DATASET), folder, "test"))
    by_stage = json.loads(made.output.read_text())

    labels = tuple(json.loads((folder / "manifest.json").read_text())["labels"])
    test = DataRef(DATASET).for_model(labels).split("test")
    row = anchors.edgecompress_row(int8_artifact.parent, list(test.texts))
    by_anchors = anchors.row_evaluation(row, None, list(test.texts), test.labels).record

    assert by_cli["n"] == by_stage["n"] == by_anchors["n"] == 2000
    assert by_cli["accuracy"] == by_stage["accuracy"] == by_anchors["accuracy"]
    assert by_cli["confusion"] == by_stage["confusion"] == by_anchors["confusion"]
    as_deployed = {"batch": 1, "lengths": "real", "seq_len": None}
    assert by_cli["evaluated_as"] == by_stage["evaluated_as"] == as_deployed
    assert by_cli["truncated"] == by_stage["truncated"]
    assert by_stage["truncated"]["max_length"] == 128


def test_eval_json_of_the_run_stage_has_every_key_of_the_schema_when_classifying(
        int8_artifact, tmp_path):
    from edgecompress.compress.data.dataref import DataRef
    from edgecompress.compress.pipeline.stages import Context
    from edgecompress.compress.pipeline.target_stages import EvalConfig, eval_stage

    folder = tmp_path / "x86"
    shutil.copytree(int8_artifact.parent, folder)
    made = eval_stage({"model": str(folder / int8_artifact.name)}, EvalConfig(),
                      Context(DataRef(DATASET), folder, "test"))
    record = json.loads(made.output.read_text())
    per_class = record["per_class"]
    # class id i's name: the model's, or (generic LABEL_i, matched by position) the dataset's
    model_labels = json.loads((folder / "manifest.json").read_text())["labels"]
    assert per_class["labels"] == list(DataRef(DATASET).for_model(model_labels).labels)
    assert set(per_class) == {"labels", "recall", "precision", "f1", "support"}
    assert all(len(per_class[k]) == 2 for k in per_class)
    assert sum(per_class["support"]) == record["n"]
    assert [sum(row) for row in record["confusion"]] == per_class["support"]
    assert set(record["truncated"]) == {"max_length", "rows", "share"}
    assert made.metrics["evaluated_as"] == record["evaluated_as"]


def _relabelled(artifact, tmp_path, labels):
    """A copy of the artifact folder whose manifest names `labels`."""
    folder = tmp_path / "relabelled"
    shutil.copytree(artifact.parent, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "labels": labels}))
    return folder / artifact.name


def test_open_evaluable_refuses_as_corrupt_when_the_manifest_names_more_labels_than_outputs(
        int8_artifact, tmp_path):
    from edgecompress.compress.evaluation.artifacts import open_evaluable

    with pytest.raises(UserError, match=r"names 3 labels \(a, b, c\) but model.onnx has 2 "
                                         r"outputs: a corrupt artifact"):
        open_evaluable(_relabelled(int8_artifact, tmp_path, ["a", "b", "c"]))


def test_open_evaluable_accepts_renamed_labels_when_their_count_matches_the_outputs(
        int8_artifact, tmp_path):
    from edgecompress.compress.evaluation.artifacts import open_evaluable

    assert open_evaluable(_relabelled(int8_artifact, tmp_path, ["neg", "pos"])).labels == (
        "neg", "pos")
