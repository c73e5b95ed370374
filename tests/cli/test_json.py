"""`--json` on every command that produces results: stdout is exactly one JSON document (json.loads
of the whole of it succeeds), progress and notes go to stderr, exit codes are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from tests.compress.vision.conftest import write_images
from tests.conftest import write_recipe

runner = CliRunner()


def _json(args, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout), result


@pytest.fixture(scope="module")
def tiny_run(tiny_bert_dir, sentiment_csv, tmp_path_factory):
    """One real recipe run (tiny BERT, x86-cpu fp32) made with `run --json`."""
    root = tmp_path_factory.mktemp("json-run")
    recipe = write_recipe(root, tiny_bert_dir, sentiment_csv, targets=("x86-cpu",))
    data, result = _json(["run", recipe, "--out", root / "run", "--json"])
    return recipe, root / "run", data, result


def test_run_json_is_the_only_stdout_and_names_the_report_when_the_run_finishes(tiny_run):
    _, run_dir, data, result = tiny_run
    assert data["run_dir"] == str(run_dir)
    assert Path(data["files"]["md"]).is_file() and Path(data["files"]["json"]).is_file()
    assert [row["target"] for row in data["report"]["rows"] if row.get("target")] == ["x86-cpu"]
    assert result.stderr.strip()  # the run's progress went to stderr


def test_run_dry_run_json_lists_checks_and_plan_when_the_run_is_cached(tiny_run):
    recipe, run_dir, _, _ = tiny_run
    data, _ = _json(["run", recipe, "--out", run_dir, "--dry-run", "--json"])
    assert data["run_dir"] == str(run_dir) and data["checks"]
    assert any("x86-cpu" in line for line in data["plan"])


def test_demo_json_is_the_only_stdout_when_the_demo_prints_progress(tiny_run, monkeypatch):
    from edgecompress.compress.pipeline import demo
    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import run_recipe

    recipe, run_dir, _, _ = tiny_run

    def tiny_demo(out, console, *, force=False, bench_runs=None):  # the demo's shape, tiny
        console.print("demo progress line")
        return run_recipe(load_recipe(recipe), out, console, force=force)

    monkeypatch.setattr(demo, "run_demo", tiny_demo)
    data, result = _json(["demo", "--out", run_dir, "--json"])
    assert data["run_dir"] == str(run_dir) and data["report"]["rows"]
    assert "demo progress line" in result.stderr


def test_report_json_gives_files_and_content_when_built(tiny_run):
    _, run_dir, _, _ = tiny_run
    data, _ = _json(["report", run_dir, "--json"])
    assert sorted(data["files"]) == ["classes_csv", "csv", "html", "json", "md"]
    assert data["report"] == json.loads(Path(data["files"]["json"]).read_text())
    again, _ = _json(["report", "build", run_dir, "--json"])  # the explicit form says the same
    assert again["files"] == data["files"]


def test_bundle_and_verify_json_report_the_manifest_then_problems_when_a_byte_flips(
        tiny_run, tmp_path):
    _, run_dir, _, _ = tiny_run
    made, _ = _json(["bundle", run_dir, "--target", "x86-cpu", "--out", tmp_path / "b",
                     "--json"])
    assert made["target"] == "x86-cpu" and made["out"] == str(tmp_path / "b")
    ok, _ = _json(["bundle", "verify", tmp_path / "b", "--json"])
    assert ok == {"bundle": str(tmp_path / "b"), "ok": True, "problems": []}
    model = tmp_path / "b" / "model.onnx"
    model.write_bytes(bytes([model.read_bytes()[0] ^ 1]) + model.read_bytes()[1:])
    broken, _ = _json(["bundle", "verify", tmp_path / "b", "--json"], code=1)
    assert broken["ok"] is False and any("model.onnx" in p for p in broken["problems"])


def test_bench_json_is_the_only_stdout_when_benchmarking_the_runs_artifact(tiny_run):
    _, run_dir, _, _ = tiny_run
    data, _ = _json(["bench", run_dir / "artifacts" / "x86-cpu" / "model.onnx", "--target",
                     "x86-cpu", "--runs", "3", "--warmup", "1", "--json"])
    assert data["p50_ms"] > 0


def test_inspect_and_eval_json_are_the_only_stdout_when_given_tiny_bert(tiny_bert_dir,
                                                                        sentiment_csv):
    info, _ = _json(["inspect", tiny_bert_dir, "--json"])
    assert info["num_layers"] == len(info["layers"]) and "x86-cpu" in info["targets"]
    scored, _ = _json(["eval", tiny_bert_dir, "--dataset", sentiment_csv, "--json"])
    assert 0.0 <= scored["accuracy"] <= 1.0 and scored["split"] == "test"


def test_init_encoder_json_gives_path_and_shape_when_created(tiny_bert_dir, tmp_path):
    data, _ = _json(["init-encoder", tmp_path / "enc", "--tokenizer", tiny_bert_dir,
                     "--hidden-size", "32", "--num-heads", "2", "--ffn-size", "64",
                     "--num-layers", "1", "--json"])
    assert data["out"] == str(tmp_path / "enc") and data["tokenizer"] == str(tiny_bert_dir)
    assert data["hidden"] == 32 and data["num_layers"] == 1
    assert data["layers"][0]["heads"] == 2 and data["layers"][0]["ffn"] == 64


def test_init_vit_json_gives_path_shape_and_classes_when_created(tmp_path):
    images = write_images(tmp_path / "images", per_class=3)
    data, _ = _json(["init-vit", tmp_path / "vit", "--dataset", images, "--patch", "4",
                     "--hidden-size", "16", "--num-layers", "1", "--num-heads", "2",
                     "--ffn-size", "32", "--json"])
    assert data["labels"] == ["bars", "blocks"] and data["image_size"] == 8
    assert (data["hidden_size"], data["num_layers"], data["num_heads"]) == (16, 1, 2)
    assert (tmp_path / "vit" / "config.json").is_file()


def test_data_list_and_fetch_json_name_the_registered_sets_when_asked():
    listed, _ = _json(["data", "list", "--json"])
    assert {"rt-polarity", "lee-similarity"} <= {d["name"] for d in listed}
    fetched, _ = _json(["data", "fetch", "lee-similarity", "--json"])
    assert fetched["name"] == "lee-similarity" and Path(fetched["path"]).is_file()
    assert sum(fetched["splits"].values()) > 0


def test_targets_list_json_holds_each_profile_as_show_gives_it():
    listed, _ = _json(["targets", "list", "--json"])
    by_name = {p["name"]: p for p in listed}
    shown, _ = _json(["targets", "show", "x86-cpu", "--json"])
    assert by_name["x86-cpu"] == shown and "needs" in shown


def test_search_json_is_the_summary_and_exit_1_when_no_trial_meets_the_budget(
        tiny_bert_dir, sentiment_csv, tmp_path):
    from tests.compress.search.test_search import write_search_recipe

    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    data, result = _json(["search", recipe, "--trials", "1", "--budget-mb", "0.01", "--out",
                          tmp_path / "out", "--json"], code=1)
    assert data["met"] is False and "x86-cpu" in data["targets"]
    assert data == json.loads((tmp_path / "out" / "search.json").read_text())
    assert "search tiny-search" in result.stderr  # the progress line, on stderr
