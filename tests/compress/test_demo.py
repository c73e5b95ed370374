"""The run behind `edgecompress demo`, on a tiny model and a small CSV so it takes seconds."""

import json

import pytest
from rich.console import Console

from edgecompress.compress.demo import RunPlan, run_plan
from edgecompress.errors import UserError

TARGETS = ("x86-cpu", "arm64-phone")


@pytest.fixture(scope="module")
def finished_run(tiny_bert_dir, sentiment_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    plan = RunPlan(str(tiny_bert_dir), str(sentiment_csv), TARGETS, finetune=False, bench_runs=3)
    report_md = run_plan(plan, out, Console(quiet=True))
    return plan, out, report_md


def test_run_writes_one_report_row_per_target_from_the_measured_json(finished_run):
    _, out, report_md = finished_run
    report = json.loads((out / "report.json").read_text())
    assert [row["target"] for row in report["rows"]] == sorted(TARGETS)
    for row in report["rows"]:
        folder = out / "artifacts" / row["target"]
        bench = json.loads((folder / "bench.json").read_text())
        evaluation = json.loads((folder / "eval.json").read_text())
        assert row["p50_ms"] == bench["p50_ms"] and row["size_bytes"] == bench["size_bytes"]
        assert row["accuracy"] == evaluation["accuracy"] and evaluation["n"] == 8
        # fp32 artifacts predict exactly what the torch teacher predicts
        assert row["agreement"] == 1.0
    assert report_md.read_text().count("| x86-cpu |") == 1


def test_rerun_skips_finished_steps_when_run_dir_is_complete(finished_run):
    plan, out, _ = finished_run
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("artifacts/*/*.json")}
    run_plan(plan, out, Console(quiet=True))
    assert {p: p.stat().st_mtime_ns for p in out.glob("artifacts/*/*.json")} == stamps


def test_run_refuses_a_directory_holding_a_different_run(finished_run, sentiment_csv):
    plan, out, _ = finished_run
    other = RunPlan(plan.model, plan.dataset, ("x86-cpu",), finetune=False, bench_runs=3)
    with pytest.raises(UserError, match="different run"):
        run_plan(other, out, Console(quiet=True))
    assert (out / "artifacts" / "arm64-phone" / "model.tflite").exists()


def test_run_refuses_an_unknown_target_before_doing_any_work(tiny_bert_dir, sentiment_csv,
                                                             tmp_path):
    plan = RunPlan(str(tiny_bert_dir), str(sentiment_csv), ("moon-base",), finetune=False)
    with pytest.raises(UserError, match="moon-base"):
        run_plan(plan, tmp_path / "run", Console(quiet=True))
    assert not (tmp_path / "run").exists()
