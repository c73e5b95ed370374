"""`edgecompress run` on a tiny model and a small CSV so it takes seconds."""

import json

import pytest
from rich.console import Console

from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import plan_lines, run_recipe
from edgecompress.errors import UserError
from tests.conftest import write_recipe

TARGETS = ("x86-cpu", "arm64-phone")


@pytest.fixture(scope="module")
def finished_run(tiny_bert_dir, sentiment_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    recipe = load_recipe(write_recipe(root, tiny_bert_dir, sentiment_csv))
    out = root / "run"
    report_md = run_recipe(recipe, out, Console(quiet=True))
    return recipe, out, report_md


def test_run_writes_one_report_row_per_target_from_the_measured_json(finished_run):
    _, out, report_md = finished_run
    report = json.loads((out / "report.json").read_text())
    assert sorted(row["target"] for row in report["rows"]) == sorted(TARGETS)
    for row in report["rows"]:
        folder = out / "artifacts" / row["target"]
        bench = json.loads((folder / "bench.json").read_text())
        evaluation = json.loads((folder / "eval.json").read_text())
        assert row["p50_ms"] == bench["p50_ms"] and row["size_bytes"] == bench["size_bytes"]
        # and over the test split's own token counts (8 sentences), as the artifact runs them
        assert row["p50_real_ms"] == bench["p50_real_ms"] > 0 and bench["real_lengths"]["n"] == 8
        assert row["accuracy"] == evaluation["accuracy"] and evaluation["n"] == 8
        assert evaluation["host"] == {**bench["host"], "threads": 1}  # eval runs at 1 thread
        assert row["agreement"] == 1.0  # fp32 artifacts predict what the torch teacher predicts
    for name in ("report.json", "report.md", "report.csv", "report.html"):
        assert (out / name).exists()


def test_rerun_skips_finished_steps_when_run_dir_is_complete(finished_run):
    recipe, out, _ = finished_run
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("artifacts/*/*.json")}
    run_recipe(recipe, out, Console(quiet=True))
    assert {p: p.stat().st_mtime_ns for p in out.glob("artifacts/*/*.json")} == stamps
    assert all("cached" in line for line in plan_lines(recipe, out)[1:])


def _step_lines(printed: str) -> dict[str, str]:
    """{step: "cached" | "to run"} from what `run` printed ("  x: cached" / "x (rerun: ...)")."""
    states = {}
    for line in printed.splitlines():
        line = line.strip()
        if line.endswith(": cached"):
            states[line[:-len(": cached")]] = "cached"
        elif line and " " not in line.split(" (rerun")[0] and not line.startswith("finished"):
            states[line.split(" (rerun")[0]] = "to run"
    return states


def test_rerun_of_an_edited_recipe_reuses_unchanged_steps_when_dry_run_predicted_it(
        tiny_bert_dir, sentiment_csv, tmp_path):
    from rich.console import Console as RichConsole

    from edgecompress.compress.pipeline.runs import plan_states

    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv)
    out = tmp_path / "run"
    run_recipe(load_recipe(path), out, Console(quiet=True))
    kept = [p for p in out.rglob("*") if p.is_file() and "bench" not in str(p.relative_to(out))
            and p.parent != out]  # every step's file but bench's (run-level files are rewritten)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept}
    path.write_text(path.read_text().replace("runs = 3", "runs = 4"))  # only bench reads it
    edited = load_recipe(path)
    predicted = {step.id: state for step, state in plan_states(edited, out)}
    assert predicted["bench-x86-cpu"] == "to run (config changed)"
    console = RichConsole(record=True, width=200)
    run_recipe(edited, out, console)  # no "different run" refusal: the folder is a store of steps
    ran = _step_lines(console.export_text())
    assert ran == {step: state.split(" (")[0] for step, state in predicted.items()}
    assert sorted(s for s, state in ran.items() if state == "to run") == ["bench-arm64-phone",
                                                                          "bench-x86-cpu"]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == before
    assert json.loads((out / "stages" / "bench-x86-cpu" / "stage.json").read_text())[
        "config"]["runs"] == 4
    # a target the recipe drops goes from the folder, so the report shows the current recipe
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("x86-cpu",))
    path.write_text(path.read_text().replace("runs = 3", "runs = 4"))
    dropped = load_recipe(path)
    assert "  remove artifacts/arm64-phone (not in this recipe)" in plan_lines(dropped, out)
    run_recipe(dropped, out, Console(quiet=True))
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [row["target"] for row in rows] == ["x86-cpu"]
    assert not (out / "artifacts" / "arm64-phone").exists()
    assert not (out / "stages" / "export-arm64-phone").exists()
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept if p.exists()} == {
        p: v for p, v in before.items() if "arm64" not in str(p)}


def test_run_dir_refuses_a_folder_edgecompress_did_not_make_even_when_forced(tmp_path):
    from edgecompress.compress.pipeline.runs import open_run_dir

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="other than an edgecompress run; pass --force"):
        open_run_dir(mine, force=False)
    with pytest.raises(UserError, match="not an edgecompress output"):
        open_run_dir(mine, force=True)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_run_dir_force_removes_only_the_run_files_when_folder_is_an_edgecompress_run(tmp_path):
    from edgecompress.compress.pipeline.runs import open_run_dir
    from edgecompress.fsutil import mark_output

    out = tmp_path / "run"
    (out / "stages" / "prune").mkdir(parents=True)
    (out / "stages" / "prune" / "stage.json").write_text("{}")
    (out / "run.json").write_text("{}")
    (out / "mine.txt").write_text("a user's file")
    mark_output(out, "run")
    open_run_dir(out, force=False)  # reused as it is
    assert (out / "stages" / "prune" / "stage.json").exists()
    open_run_dir(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == [".edgecompress-output", "mine.txt"]


def test_run_dir_force_empties_another_edgecompress_output_when_forced(tmp_path):
    from edgecompress.compress.pipeline.runs import open_run_dir
    from edgecompress.fsutil import mark_output

    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "model.safetensors").write_text("x")
    mark_output(out, "checkpoint")
    with pytest.raises(UserError, match="pass --force"):
        open_run_dir(out, force=False)
    open_run_dir(out, force=True)  # emptied in place: the run's lock file may live there
    assert list(out.iterdir()) == []


def test_dry_run_plan_lists_every_target_as_to_run_when_nothing_exists(finished_run, tmp_path):
    recipe, _, _ = finished_run
    lines = plan_lines(recipe, tmp_path / "fresh")
    assert len(lines) == 2 + len(TARGETS)  # the recipe line, the teacher eval, the targets
    assert "eval-teacher" in lines[1] and "to run" in lines[1]
    steps = {"x86-cpu": "export, eval, bench", "arm64-phone": "export, eval, verify, bench"}
    assert all(f"to run: {steps[line.split()[1]]}" in line for line in lines[2:])


def test_run_keeps_going_and_records_why_when_one_target_misses_its_gate(tiny_bert_dir,
                                                                         sentiment_csv,
                                                                         tmp_path):
    from edgecompress.targets import load_profile

    strict = tmp_path / "strict-x86.toml"
    strict.write_text(load_profile("x86-cpu").source.read_text()
                      .replace('name = "x86-cpu"', 'name = "strict-x86"')
                      + "\n[parity.dynamic-int8]\ntolerance = 1.0\nmin_agreement = 0.0\n"
                        "max_rel_error = 1e-9\n")
    path = write_recipe(tmp_path, tiny_bert_dir, sentiment_csv, targets=("arm64-phone",))
    text = path.read_text().replace('targets = ["arm64-phone"]',
                                    f'targets = ["{strict}", "arm64-phone"]')
    path.write_text(text)
    recipe = load_recipe(path)
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    refused = json.loads((out / "artifacts" / "strict-x86" / "refused.json").read_text())
    assert "relative error" in refused["reason"] and "1e-09" in refused["reason"]
    assert not list((out / "artifacts" / "strict-x86").glob("*.onnx"))
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [row["target"] for row in rows] == ["arm64-phone"]


def test_editing_the_dataset_reruns_what_reads_it_and_says_why(tiny_bert_dir, sentiment_csv,
                                                                tmp_path):
    import shutil

    from rich.console import Console as RichConsole

    data = tmp_path / "data.csv"
    shutil.copy(sentiment_csv, data)
    extra = '\n[prune]\nheads = 0.25\nimportance = "magnitude"\n'
    recipe = load_recipe(write_recipe(tmp_path, tiny_bert_dir, data, extra, targets=("x86-cpu",)))
    out = tmp_path / "run"
    run_recipe(recipe, out, Console(quiet=True))
    first = json.loads((out / "stages" / "prune" / "stage.json").read_text())
    with data.open("a") as handle:  # a relabelled copy of a test row: new content, same path
        handle.write('"a dull, lifeless mess 99",pos,test\n')
    assert any("dataset changed" in line for line in plan_lines(recipe, out))
    console = RichConsole(record=True, width=200)
    run_recipe(recipe, out, console)
    printed = console.export_text()
    assert "prune (rerun: dataset changed)" in printed
    second = json.loads((out / "stages" / "prune" / "stage.json").read_text())
    assert second["identity"] != first["identity"]
    assert second["inputs"]["dataset"] != first["inputs"]["dataset"]
    assert json.loads((out / "teacher" / "eval.json").read_text())["n"] == 9  # the new row


def test_validate_inputs_names_family_and_each_target_with_its_scheme(tiny_bert_dir,
                                                                        sentiment_csv, tmp_path):
    from edgecompress.compress.pipeline.checks import validate_inputs

    lines = validate_inputs(load_recipe(write_recipe(tmp_path, tiny_bert_dir, sentiment_csv)))
    assert "family bert" in lines
    assert "target x86-cpu: onnx fp32 on onnxruntime, 2 thread(s)" in lines
    assert any(line.startswith("target arm64-phone: tflite fp32 on litert") for line in lines)


def test_validate_inputs_refuses_prune_table_when_family_cannot_be_cut(tiny_bert_dir,
                                                                     sentiment_csv, tmp_path):
    import shutil

    from edgecompress.compress.pipeline.checks import validate_inputs

    model = tmp_path / "mobile"
    shutil.copytree(tiny_bert_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "mobilebert"}))
    recipe = load_recipe(write_recipe(tmp_path, model, sentiment_csv,
                                      extra="\n[prune]\nheads = 0.5\n"))
    with pytest.raises(UserError, match=r"\[prune\] heads: cannot prune mobilebert"):
        validate_inputs(recipe)
    vocab_only = load_recipe(write_recipe(tmp_path, model, sentiment_csv,  # (a real corpus:
                                          extra=f'\n[prune]\nvocab_corpus = "{sentiment_csv}"\n'))
    # the checks read it as the vocabulary step will)
    assert any("family mobilebert" in line for line in validate_inputs(vocab_only))


def test_step_configs_name_a_builtin_target_by_name_when_the_package_could_move(
        tiny_bert_dir, sentiment_csv, tmp_path):
    # A built-in profile's path depends on where the package is installed: it must not enter a
    # step's identity (its bytes do, as the "profile" input digest). A user's file keeps its path.
    from edgecompress.compress.pipeline.plan import plan_steps
    from edgecompress.targets.profiles import PROFILE_DIR

    own = tmp_path / "my-target.toml"
    own.write_text((PROFILE_DIR / "x86-cpu.toml").read_text().replace('name = "x86-cpu"',
                                                                      'name = "my-target"'))
    path = tmp_path / "two.toml"
    path.write_text(f'name = "two"\nmodel = "{tiny_bert_dir}"\ndataset = "{sentiment_csv}"\n'
                    f'targets = ["x86-cpu", "{own}"]\n')
    recipe = load_recipe(path)
    targets = {step.id: step.config.target for step in plan_steps(recipe, tmp_path / "run")
               if step.stage in ("export", "bench")}
    assert targets["export-x86-cpu"] == targets["bench-x86-cpu"] == "x86-cpu"
    assert targets["export-my-target"] == str(own)
