"""No silent default data: prune, quantize and export need --dataset unless the model records
the dataset it was made with; --max-drop is one type with one parser."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.config import FieldError, parse_max_drop
from tests.capture import captured

runner = CliRunner()



def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize("command, stage", [
    (["quantize", "--target", "x86-cpu"], ("quantize.stage", "run_quantize")),
    (["export", "--target", "x86-cpu"], ("pipeline.commands", "export_model")),
    (["prune", "--heads", "0.25"], ("prune.stage", "run_prune")),
])
def test_stage_exits_2_naming_dataset_when_a_user_model_records_none(command, stage,
                                                                     tiny_bert_dir, tmp_path,
                                                                     monkeypatch):
    seen = captured(monkeypatch, f"edgecompress.compress.{stage[0]}", stage[1])
    out = tmp_path / "out"
    result = runner.invoke(app, [command[0], str(tiny_bert_dir), *command[1:], "--out",
                                 str(out)])
    assert result.exit_code == 2
    lines = _error_lines(result)
    assert len(lines) == 1 and "--dataset" in lines[0]
    assert not seen and not out.exists()  # refused before the stage (and any model load)


def test_quantize_uses_the_dataset_the_checkpoint_records_when_none_is_given(tiny_bert_dir,
                                                                             tmp_path,
                                                                             monkeypatch):
    model = tmp_path / "teacher"
    shutil.copytree(tiny_bert_dir, model)
    (model / "finetune.json").write_text(json.dumps({"dataset": "rt-polarity"}))
    seen = captured(monkeypatch, "edgecompress.compress.quantize.stage", "run_quantize")
    result = runner.invoke(app, ["quantize", str(model), "--target", "x86-cpu", "--out",
                                 str(tmp_path / "q")])
    assert result.exit_code == 0, result.output
    assert seen[0].data.spec == "rt-polarity"


def test_prune_uses_the_demo_model_dataset_when_none_is_given(monkeypatch, tmp_path):
    from edgecompress.cli.stages import dataset_for

    assert dataset_for("minilm-l6", None) == "rt-polarity"
    assert dataset_for("minilm-l6", "my.csv") == "my.csv"


def test_prune_needs_no_dataset_when_it_reads_no_data(tiny_bert_dir, tmp_path, monkeypatch):
    seen = captured(monkeypatch, "edgecompress.compress.prune.stage", "run_prune")
    result = runner.invoke(app, ["prune", str(tiny_bert_dir), "--out", str(tmp_path / "p"),
                                 "--heads", "0.25", "--importance", "magnitude", "--no-eval"])
    assert result.exit_code == 0, result.output
    assert seen[0].data is None and seen[0].config.importance == "magnitude"


def test_max_drop_reads_points_or_a_percentage_when_parsed():
    assert parse_max_drop("1.5") == (1.5, False)
    assert parse_max_drop(" 2% ") == (0.02, True)
    with pytest.raises(FieldError) as err:
        parse_max_drop("lots")
    assert err.value.field == "max_drop"


def test_quantize_passes_a_relative_max_drop_when_given_a_percentage(tiny_bert_dir, tmp_path,
                                                                     monkeypatch):
    seen = captured(monkeypatch, "edgecompress.compress.quantize.stage", "run_quantize")
    result = runner.invoke(app, ["quantize", str(tiny_bert_dir), "--target", "npu-int8",
                                 "--dataset", "rt-polarity", "--max-drop", "2%", "--out",
                                 str(tmp_path / "q")])
    assert result.exit_code == 0, result.output
    assert (seen[0].config.max_drop, seen[0].config.relative) == (0.02, True)


@pytest.mark.parametrize("command", ["quantize", "search"])
def test_max_drop_exits_2_naming_the_flag_when_it_is_not_a_drop(command, tiny_bert_dir,
                                                                 tmp_path):
    args = (["quantize", str(tiny_bert_dir), "--target", "npu-int8", "--dataset", "rt-polarity",
             "--out", str(tmp_path / "q")] if command == "quantize"
            else ["search", str(tmp_path / "r.toml"), "--out", str(tmp_path / "s")])
    result = runner.invoke(app, [*args, "--max-drop", "lots"])
    assert result.exit_code == 2
    assert "--max-drop: expected points (1.0) or a percentage ('2%')" in result.output


def test_search_max_drop_exits_2_when_given_a_relative_drop(tmp_path):
    result = runner.invoke(app, ["search", str(tmp_path / "r.toml"), "--out",
                                 str(tmp_path / "s"), "--max-drop", "2%"])
    assert result.exit_code == 2 and "--max-drop: search takes accuracy points" in result.output
