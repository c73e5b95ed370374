"""The report's per-class and data sections, in every format (md, html, csv, json), read from
eval.json's per_class / confusion / truncated / duplicates and bench.json's real_lengths."""

import csv
import io
import json

import pytest

from edgecompress.errors import UserError
from edgecompress.reports import build_report, write_report
from tests.reports.rundirs import add_artifact, make_run, write_json

LABELS = ["negative", "neutral", "positive"]


def _classes(recall, confusion, labels=LABELS):
    precision = [0.8, 0.7, 0.9]
    return {"per_class": {"labels": labels, "recall": recall, "precision": precision,
                          "f1": [round(2 * p * r / (p + r), 4) for p, r in zip(precision, recall)],
                          "support": [sum(row) for row in confusion]},
            "confusion": confusion, "macro_f1": 0.75}


TEACHER = _classes([0.80, 0.77, 0.90], [[80, 15, 5], [13, 77, 10], [4, 6, 90]])
EDGETPU = _classes([0.85, 0.62, 0.89], [[85, 10, 5], [30, 62, 8], [5, 6, 89]])


def _eval_file(run_dir, where):
    return run_dir / where / "eval.json"


def _add(run_dir, where, extra):
    path = _eval_file(run_dir, where)
    write_json(path, {**json.loads(path.read_text()), **extra})


@pytest.fixture()
def three_class_run(tmp_path):
    run = make_run(tmp_path / "run")
    add_artifact(run, "edgetpu", fmt="tflite")
    _add(run, "teacher", TEACHER)
    _add(run, "artifacts/edgetpu", EDGETPU)
    return run  # x86-cpu's eval.json is an older one: no per-class keys


def test_per_class_section_shows_the_neutral_recall_drop_in_every_format(three_class_run):
    write_report(three_class_run)
    drop = "edgetpu, class neutral: recall 77.0% → 62.0% (-15.0 points)"
    markdown = (three_class_run / "report.md").read_text()
    assert "## Per class" in markdown and drop in markdown
    assert "| class | support | teacher | edgetpu | x86-cpu |" in markdown
    assert "| neutral | 100 | 77.0% | 62.0% (-15.0) | not recorded |" in markdown
    assert "| macro-F1 |  | 0.750 | 0.750 | — |" in markdown
    assert "| neutral | 30 | 62 | 8 |" in markdown  # edgetpu's confusion row
    html = (three_class_run / "report.html").read_text()
    assert '<table id="classes">' in html and drop in html
    report = json.loads((three_class_run / "report.json").read_text())
    classes = report["classes"]
    assert classes["labels"] == LABELS
    by_model = {m["model"]: m for m in classes["models"]}
    assert by_model["edgetpu"]["recall_delta_points"] == [5.0, -15.0, -1.0]
    assert by_model["x86-cpu"]["recorded"] is False
    assert by_model["teacher"]["confusion"][1] == [13, 77, 10]


def test_per_class_csv_is_a_second_file_with_one_line_per_model_and_class(three_class_run):
    paths = write_report(three_class_run)
    assert three_class_run / "report-classes.csv" in paths
    lines = list(csv.DictReader(io.StringIO((three_class_run / "report-classes.csv").read_text())))
    neutral = next(r for r in lines if r["model"] == "edgetpu" and r["class"] == "neutral")
    assert neutral["recall"] == "0.62" and neutral["recall_vs_teacher_points"] == "-15.0"
    assert (neutral["predicted:negative"], neutral["predicted:neutral"]) == ("30", "62")
    old = [r for r in lines if r["model"] == "x86-cpu"]
    assert len(old) == 1 and old[0]["recorded"] == "False" and old[0]["class"] == ""
    assert len(lines) == 3 + 3 + 1
    row = next(csv.DictReader(io.StringIO((three_class_run / "report.csv").read_text())))
    assert "macro_f1" in row  # the main CSV keeps one line per artifact


def test_per_class_section_says_not_recorded_when_no_eval_json_has_it(run_dir):
    write_report(run_dir)
    assert "Per-class metrics: not recorded" in (run_dir / "report.md").read_text()
    assert "Per-class metrics: not recorded" in (run_dir / "report.html").read_text()
    assert json.loads((run_dir / "report.json").read_text())["classes"]["labels"] == []


def test_per_class_matches_classes_by_name_when_an_artifact_lists_them_in_another_order(
        three_class_run):
    order = [2, 0, 1]
    shuffled = {"per_class": {k: [EDGETPU["per_class"][k][i] for i in order]
                              for k in EDGETPU["per_class"]},
                "confusion": [[EDGETPU["confusion"][i][j] for j in order] for i in order]}
    _add(three_class_run, "artifacts/edgetpu", shuffled)
    models = build_report(three_class_run)["classes"]["models"]
    edgetpu = next(m for m in models if m["model"] == "edgetpu")
    assert edgetpu["recall"] == EDGETPU["per_class"]["recall"]
    assert edgetpu["confusion"] == EDGETPU["confusion"]


@pytest.mark.parametrize("extra, mentions", [
    ({"per_class": {"labels": LABELS, "recall": [0.5]}}, "'per_class.recall' should be 3"),
    ({"per_class": [1, 2]}, "'per_class' should be an object"),
    ({**TEACHER, "confusion": [[1, 2], [3, 4]]}, "'confusion' should be a 3 x 3 table"),
    ({**TEACHER, "confusion": [[1, 2, 3], [4, 5, 6], [7, 8, -9]]}, "'confusion' should be"),
    ({"truncated": {"max_length": 128}}, "'truncated' needs numeric 'rows', 'share'"),
    ({"duplicates": "29"}, "'duplicates' should be an object"),
    ({**_classes([0.8, 0.7, 0.9], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], ["a", "b", "c"])},
     "are not the teacher's classes"),
])
def test_report_refuses_an_eval_json_whose_per_class_or_data_keys_are_malformed(
        three_class_run, extra, mentions):
    _add(three_class_run, "artifacts/edgetpu", extra)
    with pytest.raises(UserError, match=mentions.replace("(", r"\(").replace("[", r"\[")):
        build_report(three_class_run)


def test_data_section_says_truncation_overlap_and_max_length_latency_in_every_format(run_dir):
    cut = {"max_length": 128, "rows": 272, "share": 0.68}
    _add(run_dir, "teacher", {"truncated": cut, "split": "test",
                              "duplicates": {"split": "test", "against": "train", "rows": 29,
                                             "n": 2000}})
    _add(run_dir, "artifacts/x86-cpu", {"truncated": cut, "split": "test"})
    bench = run_dir / "artifacts" / "x86-cpu" / "bench.json"
    write_json(bench, {**json.loads(bench.read_text()),
                       "real_lengths": {"n": 200, "mean": 128.0, "max": 128}})
    write_report(run_dir)
    truncation = ("Truncation: 272 test rows (68.0%) are longer than 128 tokens; the model sees "
                  "only their first 128 tokens (teacher, x86-cpu).")
    overlap = "Warning: 29 of 2,000 test rows (1.5%) also appear in the train split"
    latency = "p50 ms, real lengths (x86-cpu): every sampled test sentence was cut to the max"
    for name in ("report.md", "report.html"):
        text = (run_dir / name).read_text()
        assert truncation in text and overlap in text and latency in text, name
    report = json.loads((run_dir / "report.json").read_text())
    assert report["data"]["truncated"][0]["models"] == ["teacher", "x86-cpu"]
    assert report["data"]["duplicates"]["rows"] == 29
    (row,) = csv.DictReader(io.StringIO((run_dir / "report.csv").read_text()))
    assert row["truncated_share"] == "0.68" and row["real_lengths_all_max_length"] == "True"


def test_data_section_says_not_recorded_and_no_max_length_warning_for_older_files(run_dir):
    bench = run_dir / "artifacts" / "x86-cpu" / "bench.json"
    write_json(bench, {**json.loads(bench.read_text()),
                       "real_lengths": {"n": 200, "mean": 23.4, "max": 128}})
    report = build_report(run_dir)
    assert report["data"] == {"truncated": [], "duplicates": None, "real_lengths_at_max": []}
    markdown = (write_report(run_dir)[1]).read_text()
    assert "Truncation at the model's max length: not recorded" in markdown
    assert "Train/test overlap: not recorded" in markdown


def test_data_section_says_no_overlap_when_the_test_rows_are_all_new(run_dir):
    _add(run_dir, "teacher", {"duplicates": {"split": "test", "against": "train", "rows": 0,
                                             "n": 2000}})
    write_report(run_dir)
    assert "none of the 2,000 test rows appears in the train split" in \
        (run_dir / "report.md").read_text()
