"""The report's "How the artifacts were made", from stage records as a run writes them."""

import json

import pytest

from edgecompress.errors import UserError
from edgecompress.reports.levers import run_levers
from edgecompress.reports.report import build_report, render_markdown
from tests.reports.rundirs import add_artifact

TRAIN = {"epochs": 3, "batch_size": 32}


def _stage(run_dir, name, config, **extra):
    folder = run_dir / "stages" / name
    folder.mkdir(parents=True)
    record = {"stage": name, "config": config, "input": {"model": "minilm-l6"}, **extra}
    (folder / "stage.json").write_text(json.dumps(record))
    return folder


def _run(tmp_path):
    run_dir = tmp_path / "run"
    _stage(run_dir, "finetune", {"train": {**TRAIN, "epochs": 1}, "seeds": 1})
    _stage(run_dir, "prune", {"keep_layers": [1, 3, 5], "heads": 0.25, "ffn": 0.0,
                              "importance": "gradient"})
    _stage(run_dir, "distill", {"distill": {"train": TRAIN, "temperature": 2.0, "kd_weight": 1.0,
                                            "ce_weight": 0.5, "hidden_weight": 0.0},
                                "student": "pruned"},
           metrics={"student": {"layers": 3, "params": 1234567}})
    checkpoint = run_dir / "stages" / "vocab" / "checkpoint"
    _stage(run_dir, "vocab", {"vocab_corpus": "rt-polarity"}, output=str(checkpoint))
    checkpoint.mkdir()
    (checkpoint / "prune.json").write_text(json.dumps({"vocabulary": {
        "tokenizer": "WordPiece", "vocab_before": 30522, "vocab_after": 13601}}))
    return run_dir


def test_levers_say_what_each_model_stage_did_in_pipeline_order(tmp_path):
    assert run_levers(_run(tmp_path)) == [
        "teacher: fine-tuned 1 epoch(s) from minilm-l6 (1 seed(s))",
        "prune: kept layers 1, 3, 5; cut 25% of the attention heads by gradient",
        "distill: student pruned (3 layers, 1,234,567 params) learnt from the teacher for 3 "
        "epoch(s): logit KD (T = 2) 1, label CE 0.5",
        "vocabulary: pruned to the tokens of rt-polarity (WordPiece: 30,522 -> 13,601 tokens)"]


def test_a_stage_record_with_another_layout_is_one_line_naming_it_not_a_crash(tmp_path):
    run_dir = _run(tmp_path)
    (run_dir / "stages" / "distill" / "stage.json").write_text(
        json.dumps({"config": {"distill": "3 epochs"}}))
    with pytest.raises(UserError, match="stages/distill/stage.json has an unexpected layout"):
        run_levers(run_dir)


def test_the_markdown_report_lists_the_levers_when_the_run_has_stages(tmp_path):
    run_dir = _run(tmp_path)
    (run_dir / "teacher").mkdir()
    (run_dir / "teacher" / "eval.json").write_text(json.dumps({"accuracy": 0.8, "n": 10}))
    add_artifact(run_dir)
    text = render_markdown(build_report(run_dir))
    assert "## How the artifacts were made" in text and "- prune: kept layers 1, 3, 5" in text


def test_levers_list_each_prune_and_distill_round_in_order(tmp_path):
    run_dir = _run(tmp_path)
    distill = {"distill": {"train": {**TRAIN, "epochs": 1}, "kd_weight": 1.0},
               "student": "pruned"}
    _stage(run_dir, "prune-round1", {"keep_layers": [1, 3, 5], "ffn": 0.25,
                                     "importance": "gradient"})
    _stage(run_dir, "distill-round1", distill)
    lines = run_levers(run_dir)
    assert [line.split(":")[0] for line in lines] == [
        "teacher", "prune (round 1 of 2)", "distill (round 1 of 2)",
        "prune (round 2 of 2, fractions of what round 1 left)", "distill (round 2 of 2)",
        "vocabulary"]
    assert "cut 25% of the FFN neurons" in lines[1] and "for 1 epoch(s)" in lines[2]
