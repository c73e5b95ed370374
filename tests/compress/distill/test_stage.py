import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.distill import MANIFEST
from edgecompress.compress.models.loading import load_model
from tests.models import save_tiny, tiny_bert

runner = CliRunner()


def _distill(teacher, student, dataset, out, *extra):
    return runner.invoke(app, ["distill", "--teacher", str(teacher), "--student", student,
                               "--dataset", str(dataset), "--out", str(out), "--batch-size", "8",
                               *extra])


def test_distill_writes_a_loadable_student_when_run_from_the_cli(tiny_bert_dir, sentiment_csv,
                                                                tmp_path):
    out = tmp_path / "student"
    result = _distill(tiny_bert_dir, "layers:1", sentiment_csv, out, "--max-steps", "3",
                      "--hidden-weight", "1", "--attention-weight", "1", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["steps_done"] == 3 and manifest["layer_map"] == [[0, 1]]
    assert manifest["test"]["student"]["n"] == 8 and "agreement" in manifest["test"]["student"]
    assert json.loads((out / MANIFEST).read_text())["fingerprint"] == manifest["fingerprint"]
    assert len(load_model(out).module.hf.bert.encoder.layer) == 1
    assert not (tmp_path / ".student.ckpt").exists()
    again = _distill(tiny_bert_dir, "layers:1", sentiment_csv, out, "--max-steps", "3",
                     "--hidden-weight", "1", "--attention-weight", "1", "--json")
    assert json.loads(again.output)["wall_seconds"] == manifest["wall_seconds"]  # cached


@pytest.mark.parametrize("student_kind, message", [
    ("vocab", "different vocabularies"),
    ("labels", "labels"),
])
def test_distill_exits_2_with_one_line_when_student_does_not_fit_teacher(
        tiny_bert_dir, sentiment_csv, tmp_path, student_kind, message):
    from transformers import BertConfig, BertForSequenceClassification

    if student_kind == "vocab":
        config = BertConfig(vocab_size=2000, hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=4, intermediate_size=64)
        student_dir = tmp_path / "student-in"
        BertForSequenceClassification(config).save_pretrained(str(student_dir))
        tiny_bert().tokenizer.save_pretrained(str(student_dir))
    else:
        student_dir = save_tiny(tiny_bert(num_labels=3), tmp_path / "student-in")
    result = _distill(tiny_bert_dir, str(student_dir), sentiment_csv, tmp_path / "out")
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_distill_exits_2_with_one_line_when_layer_map_names_missing_layers(
        tiny_bert_dir, sentiment_csv, tmp_path):
    result = _distill(tiny_bert_dir, "layers:0,1", sentiment_csv, tmp_path / "out",
                      "--hidden-weight", "1", "--layer-map", "0:0,1:5")
    assert result.exit_code == 2
    assert "teacher layer 5" in result.output and len(result.output.strip().splitlines()) == 1


def test_unlabeled_texts_reads_one_sentence_a_line_when_given_a_text_file(tmp_path):
    from edgecompress.compress.distill.stage import unlabeled_texts
    from edgecompress.errors import UserError

    path = tmp_path / "extra.txt"
    path.write_text("a fine  film\n\n  a bad one \n")
    assert unlabeled_texts(path) == ["a fine film", "a bad one"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="holds no text"):
        unlabeled_texts(tmp_path / "empty.txt")
