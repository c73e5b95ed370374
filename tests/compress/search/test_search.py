"""`edgecompress search` on a tiny BERT and a 40-sentence CSV: both executors, resume, budgets,
bad [search] tables. Each trial is a real run (prune, ONNX export with parity, eval, bench)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.cli.search import run_search
from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import run_recipe
from edgecompress.compress.search.front import Budgets
from edgecompress.compress.search.study import SearchConfig, open_study, prepare
from edgecompress.fsutil import sha256_file

SPACE = """
[search.prune]
heads = [0.0, 0.5]

[search.quantize.schemes]
x86-cpu = ["fp32", "dynamic-int8"]
"""


def write_search_recipe(folder: Path, model: Path, data: Path, space: str = SPACE) -> Path:
    path = folder / "search.toml"
    path.write_text(f'name = "tiny-search"\nmodel = "{model}"\ndataset = "{data}"\n'
                    'targets = ["x86-cpu"]\n\n[prune]\nheads = 0.25\n\n[bench]\nruns = 3\n'
                    f"warmup = 1\n{space}")
    return path


def _search(recipe: Path, out: Path, **kwargs) -> dict:
    return run_search(SearchConfig(recipe=recipe, out=out, **{"trials": 4, **kwargs}),
                      Console(quiet=True))


@pytest.fixture(scope="module")
def local_search(tiny_bert_dir, sentiment_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    recipe = write_search_recipe(root, tiny_bert_dir, sentiment_csv)
    return recipe, root / "out", _search(recipe, root / "out")


def _params(summary: dict) -> list[dict]:
    return [t["params"] for t in summary["trials"]]


def test_four_trial_search_writes_a_front_and_a_best_recipe_that_reruns_to_its_artifact(
        local_search, tmp_path):
    _, out, summary = local_search
    assert [t["number"] for t in summary["trials"]] == [0, 1, 2, 3]
    assert all(t["state"] == "complete" for t in summary["trials"])
    part = summary["targets"]["x86-cpu"]
    assert part["front"] and set(part["front"]) <= {0, 1, 2, 3}
    assert part["chosen"] in part["front"]  # no budgets: the most accurate, itself on the front
    assert set(part["test"]) == {str(n) for n in part["front"]}  # test for the front only
    assert all(row["n"] == 8 for row in part["test"].values())  # the 8 test sentences
    assert all(p["split"] == "dev" for p in summary["trials"])
    chosen = next(p for p in part["points"] if p["trial"] == part["chosen"])
    run_recipe(load_recipe(out / "best.toml"), tmp_path / "rerun", Console(quiet=True))
    artifact = next((tmp_path / "rerun" / "artifacts" / "x86-cpu").glob("model.*onnx"))
    assert sha256_file(artifact) == chosen["sha256"]
    for name in ("search.md", "search.html", "search.json", "study.db"):
        assert (out / name).is_file()
    assert 'class="pareto"' in (out / "search.html").read_text()


def test_trials_that_share_a_prune_reuse_it_from_the_store(local_search):
    _, out, summary = local_search
    by_heads = {}
    for trial in summary["trials"]:
        by_heads.setdefault(trial["params"]["prune.heads"], []).append(trial)
    shared = next(group for group in by_heads.values() if len(group) > 1)
    assert "prune" in shared[1]["cached_steps"]  # the second trial with these heads
    assert len(list((out / "store").glob("prune-*"))) == len(by_heads)


def _rows_by_params(summary: dict) -> dict:
    points = {p["trial"]: p for p in summary["targets"]["x86-cpu"]["points"]}
    return {json.dumps(t["params"], sort_keys=True): points[t["number"]]
            for t in summary["trials"]}


@pytest.mark.slow  # a Ray cluster in process: ~60 s, the default run's heaviest test
def test_ray_executor_runs_the_same_trials_as_the_local_one(local_search, tmp_path):
    pytest.importorskip("ray")
    recipe, _, local = local_search
    summary = _search(recipe, tmp_path / "ray", executor="ray")
    assert summary["executor"] == "ray"
    # The seeded sampler draws the same start-up trials (later TPE trials follow the measured,
    # noisy latencies, so they may differ); a trial with the same values gives the same artifact.
    assert _params(summary)[:2] == _params(local)[:2]
    local_rows, ray_rows = _rows_by_params(local), _rows_by_params(summary)
    shared = set(local_rows) & set(ray_rows)
    assert shared  # at least the start-up trials
    for key in shared:
        assert ray_rows[key]["accuracy"] == local_rows[key]["accuracy"]
        _assert_same_outputs(ray_rows[key]["artifact"], local_rows[key]["artifact"])


def _assert_same_outputs(one: str, other: str) -> None:
    """Two artifacts compute the same logits (bytes may differ: node names, metadata)."""
    from edgecompress.targets import load_runner
    from tests.models import batch, tiny_bert

    inputs = batch(tiny_bert())
    np.testing.assert_allclose(load_runner(Path(one)).run(**inputs),
                               load_runner(Path(other)).run(**inputs), atol=1e-6, rtol=0)


@pytest.mark.slow  # ~40 s: three searches; reuse from the store: test_trials_that_share_a_prune
def test_a_killed_search_resumes_without_repeating_finished_trials(tiny_bert_dir, sentiment_csv,
                                                                   tmp_path):
    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    out = tmp_path / "out"
    _search(recipe, out, trials=2)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/result.json")}
    config = SearchConfig(recipe=recipe, out=out, trials=3)
    study = open_study(out, config)
    left_running = study.ask()  # as a search killed mid-trial leaves it
    params = prepare(config).space.suggest(left_running)
    summary = _search(recipe, out, trials=3)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # trials 0 and 1 not rerun
    assert [t["number"] for t in summary["trials"]] == [0, 1, 3]
    retried = summary["trials"][-1]
    assert retried["params"] == params  # the interrupted trial, run again with its values
    states = {t.number: t.state.name for t in open_study(out, config).get_trials()}
    assert states[2] == "FAIL" and states[3] == "COMPLETE"


runner = CliRunner()


@pytest.mark.slow  # ~30 s; the default run keeps tests/cli/test_json.py's exit-1-on-no-trial case
def test_a_budget_no_trial_meets_exits_1_and_names_the_nearest_trials(tiny_bert_dir,
                                                                      sentiment_csv, tmp_path):
    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    result = runner.invoke(app, ["search", str(recipe), "--trials", "2", "--budget-mb", "0.01",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "x86-cpu: no trial meets the budgets; nearest: trial" in result.output
    summary = json.loads((tmp_path / "out" / "search.json").read_text())
    assert summary["met"] is False and summary["best"] is None
    assert not (tmp_path / "out" / "best.toml").exists()
    trials = open_study(tmp_path / "out", SearchConfig(recipe=recipe, out=tmp_path / "out",
                                                        budgets=Budgets(size_mb=0.01))).get_trials()
    assert all(t.constraints["x86-cpu.size_mb"] > 0 for t in trials)  # what TPE steers by


BAD = [
    ("[search.colour]\nx = [1, 2]\n", "key 'search.colour.x'"),
    ("[search.prune]\nheads = []\n", "key 'search.prune.heads': expected a non-empty list"),
    ("[search.prune]\nheads = { low = 0.5, high = 0.1 }\n", "key 'search.prune.heads'"),
    ("[search.prune]\nheads = { low = 0.0, high = 0.5, steps = 2 }\n",
     "key 'search.prune.heads.steps'"),
    ("[search.prune]\nheads = [0.0, 2.5]\n", "key 'search.prune.heads': the choice 2.5"),
    ("[search.quantize.schemes]\nx86-cpu = [\"fp32\", \"int3\"]\n",
     "key 'search.quantize.schemes.x86-cpu'"),
    ("[search.distill.train]\nepochs = [\"three\"]\n", "key 'search.distill.train.epochs'"),
    ("", "no [search] table"),
]


@pytest.mark.parametrize("space, said", BAD, ids=[s for _, s in BAD])
def test_a_bad_search_table_is_one_line_naming_the_key_and_writes_nothing(
        space, said, tiny_bert_dir, sentiment_csv, tmp_path):
    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv, space)
    result = runner.invoke(app, ["search", str(recipe), "--out", str(tmp_path / "out")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert said in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, said", [
    (["--time", "soon"], "--time: expected a duration"),
    (["--executor", "dask"], "'dask' is not one of 'local', 'ray'"),
    (["--budget-ms", "-1"], "--budget-ms must be positive"),
    (["--address", "auto"], "--address is for --executor ray"),
    (["--target", "moon-base"], "moon-base"),
])
def test_bad_search_flags_are_one_line_and_write_nothing(args, said, tiny_bert_dir,
                                                         sentiment_csv, tmp_path):
    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    result = runner.invoke(app, ["search", str(recipe), "--out", str(tmp_path / "out"), *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert said in lines[0]
    assert not (tmp_path / "out").exists()


def test_budgets_refuse_non_positive_limits():
    with pytest.raises(ValueError, match="latency_ms"):
        Budgets(latency_ms=0)
    assert Budgets(max_drop=0).max_drop == 0


@pytest.mark.slow  # ~16 s: a second whole search
def test_the_recipes_own_settings_run_first_and_are_measured_on_test(tiny_bert_dir,
                                                                    sentiment_csv, tmp_path):
    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv,
                                 "[search.prune]\nheads = [0.0, 0.25]\n")  # the recipe: 0.25
    summary = _search(recipe, tmp_path / "out", trials=2)
    assert summary["baseline"] == 0
    assert summary["trials"][0]["params"] == {"prune.heads": 0.25}
    assert "0" in summary["targets"]["x86-cpu"]["test"]
    assert "0 (recipe)" in (tmp_path / "out" / "search.md").read_text()


def test_ray_executor_without_ray_is_one_line_saying_how_to_install_it(
        tiny_bert_dir, sentiment_csv, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as where the [ray] extra is not installed
    recipe = write_search_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    result = runner.invoke(app, ["search", str(recipe), "--executor", "ray",
                                 "--out", str(tmp_path / "out")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "pip install 'edgecompress[ray]'" in lines[0]
    assert not (tmp_path / "out").exists()
