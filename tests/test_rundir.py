"""The run directory's layout and its readers (edgecompress/rundir.py)."""

import pytest

from edgecompress.errors import UserError
from edgecompress.rundir import RunDir, read_object


def test_run_dir_paths_follow_the_layout_when_built_from_a_root(tmp_path):
    run = RunDir(tmp_path)
    assert run.stage_file("prune") == tmp_path / "stages" / "prune" / "stage.json"
    assert run.teacher_eval == tmp_path / "teacher" / "eval.json"
    assert run.manifest_file("x86-cpu") == tmp_path / "artifacts" / "x86-cpu" / "manifest.json"
    assert run.refused_file("edgetpu") == tmp_path / "artifacts" / "edgetpu" / "refused.json"
    assert run.report_file("html") == tmp_path / "report.html"
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        run.report_file("pdf")


@pytest.mark.parametrize("content, message", [
    (b"{\"a\": ", "is not valid JSON"),
    (b"\xff\xfe", "is not UTF-8 text"),
    (b"[1, 2]", "expected a JSON object, got list"),
])
def test_read_object_raises_one_line_naming_the_file_when_file_is_damaged(tmp_path, content,
                                                                          message):
    path = tmp_path / "eval.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        read_object(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_object_is_empty_when_missing_and_allowed_or_raises_otherwise(tmp_path):
    assert read_object(tmp_path / "run.json") == {}
    with pytest.raises(UserError, match="not found"):
        read_object(tmp_path / "run.json", missing_ok=False)


def test_stale_entries_names_steps_and_targets_the_plan_does_not_make_when_recipe_changed(
        tmp_path):
    run = RunDir(tmp_path)
    run.write_stage("distill", {"stage": "distill"})
    run.write_stage("prune", {"stage": "prune"})
    run.write_refused("edgetpu", "export-edgetpu", "agreement 0.89", {})
    run.stage_dir("vocab").mkdir()
    (run.artifact_dir("x86-cpu")).mkdir(parents=True)
    stale = run.stale_entries({"prune", "vocab"}, {"x86-cpu"})
    assert stale == [run.stage_dir("distill"), run.artifact_dir("edgetpu")]
    assert run.refused_targets() == ["edgetpu"] and run.read_refused("edgetpu")["step"] == (
        "export-edgetpu")
