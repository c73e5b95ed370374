"""Same name, same meaning: init-encoder / init-vit counts have their own names (prune's --heads
is a fraction), the old names still work with a one-line note; --tokenizer means the same in
init-encoder and eval; choices are Enums; a usage error is one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.cli.flags import deprecation_note, in_flags, rename_args
from edgecompress.cli.models import INIT_ENCODER_RENAMES
from edgecompress.cli.vision import INIT_VIT_RENAMES
from tests.compress.vision.conftest import write_images

runner = CliRunner()
SMALL = {"--hidden-size": "32", "--num-heads": "2", "--ffn-size": "48", "--num-layers": "1",
         "--max-positions": "64"}
OLD = {old: SMALL[new] for old, new in INIT_ENCODER_RENAMES.items()}


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_init_encoder_old_names_make_the_same_model_with_one_note_each_when_used(
        tiny_bert_dir, tmp_path):
    new = _invoke("init-encoder", tmp_path / "new", "--tokenizer", tiny_bert_dir,
                  *[x for pair in SMALL.items() for x in pair])
    old = _invoke("init-encoder", tmp_path / "old", "--tokenizer", tiny_bert_dir,
                  *[x for pair in OLD.items() for x in pair])
    assert new.exit_code == old.exit_code == 0, old.output
    assert new.stderr == ""
    assert old.stderr.splitlines() == [deprecation_note(o, n)
                                       for o, n in INIT_ENCODER_RENAMES.items()]
    config = json.loads((tmp_path / "new" / "encoder_config.json").read_text())
    assert json.loads((tmp_path / "old" / "encoder_config.json").read_text()) == config
    assert config["d_model"] == 32 and config["heads"] == [2] and config["max_len"] == 64


def test_init_vit_old_names_give_the_new_names_shape_with_a_note_when_used(tmp_path):
    images = write_images(tmp_path / "images", per_class=3)
    result = _invoke("init-vit", tmp_path / "vit", "--dataset", images, "--patch", "4",
                     "--hidden=16", "--layers", "1", "--heads", "2", "--ffn", "32", "--json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert sorted(warnings) == sorted(deprecation_note(o, n) for o, n in INIT_VIT_RENAMES.items())
    data = json.loads(result.stdout)
    assert (data["hidden_size"], data["num_layers"], data["num_heads"], data["ffn_size"]) == (
        16, 1, 2, 32)


def test_prune_keeps_heads_as_a_fraction_when_init_encoder_renames_its_count():
    assert "--heads" not in INIT_ENCODER_RENAMES.values()  # the count's name is another one
    help_text = _invoke("init-encoder", "--help").output
    assert "--num-heads" in help_text and "--heads " not in help_text


def test_rename_args_rewrites_equals_form_and_leaves_args_after_double_dash_when_given():
    renames = {"--d-model": "--hidden-size"}
    assert rename_args(["--d-model=64", "x", "--", "--d-model"], renames) == [
        "--hidden-size=64", "x", "--", "--d-model"]


def test_in_flags_names_the_flag_when_the_library_names_the_field():
    flags = {"d_model": "--hidden-size", "heads": "--num-heads"}
    assert in_flags("d_model must be >= 1, got 0", flags) == "--hidden-size must be >= 1, got 0"
    assert in_flags("d_model 30 is not divisible by 8 heads", flags) == (
        "--hidden-size 30 is not divisible by 8 heads")


@pytest.mark.parametrize("flag, value, said", [
    ("--num-heads", "3", "--hidden-size 32 is not divisible by 3 heads"),
    ("--num-layers", "0", "--num-layers must be >= 1"),
])
def test_init_encoder_shape_errors_name_the_flag_when_the_shape_is_bad(flag, value, said,
                                                                       tiny_bert_dir, tmp_path):
    result = _invoke("init-encoder", tmp_path / "enc", "--tokenizer", tiny_bert_dir,
                     "--hidden-size", "32", flag, value)
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0, result.output
    assert said in result.output and not (tmp_path / "enc").exists()


def test_init_vit_shape_errors_name_the_flag_when_heads_do_not_divide_hidden(tmp_path):
    images = write_images(tmp_path / "images", per_class=3)
    result = _invoke("init-vit", tmp_path / "vit", "--dataset", images, "--hidden-size", "10",
                     "--num-heads", "4")
    assert result.exit_code == 2 and "--hidden-size 10 is not a multiple" in result.output


# --tokenizer: a checkpoint directory or built-in name whose tokenizer is used, in both commands

@pytest.fixture(scope="module")
def artifact(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "export"
    result = _invoke("export", tiny_bert_dir, "--target", "x86-cpu", "--out", out)
    assert result.exit_code == 0, result.output
    return out / "model.onnx"


def test_eval_tokenizer_accepts_a_checkpoint_directory_when_the_artifact_folder_has_none(
        artifact, tiny_bert_dir, sentiment_csv, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.onnx").write_bytes(artifact.read_bytes())  # no tokenizer, no manifest
    refused = _invoke("eval", bare / "model.onnx", "--dataset", sentiment_csv)
    assert refused.exit_code == 2 and "no tokenizer" in refused.output
    scored = _invoke("eval", bare / "model.onnx", "--dataset", sentiment_csv, "--tokenizer",
                     tiny_bert_dir, "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["n"] == 8


def test_init_encoder_tokenizer_accepts_an_artifact_folder_as_eval_does(artifact, tmp_path):
    result = _invoke("init-encoder", tmp_path / "enc", "--tokenizer", artifact.parent,
                     "--hidden-size", "32", "--num-heads", "2", "--num-layers", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tokenizer"] == str(artifact.parent)


@pytest.mark.parametrize("command", ["init-encoder", "eval"])
def test_tokenizer_not_found_is_the_same_line_when_given_to_either_command(command, tmp_path,
                                                                           sentiment_csv):
    args = {"init-encoder": ["init-encoder", tmp_path / "enc"],
            "eval": ["eval", "minilm-l6", "--dataset", sentiment_csv]}[command]
    result = _invoke(*args, "--tokenizer", tmp_path / "nowhere")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: tokenizer not found: {tmp_path / 'nowhere'} "
                                     "(not a directory, nor a built-in name: minilm-l6)")


# choices and usage errors

def test_search_executor_is_an_enum_shown_in_help_and_refused_in_one_line_when_unknown(tmp_path):
    assert "local|ray" in _invoke("search", "--help").output
    result = _invoke("search", tmp_path / "r.toml", "--executor", "dask")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: Invalid value for '--executor': 'dask' is not one of 'local', 'ray'. "
        "(see root search --help)"]


def test_an_unknown_flag_is_one_line_naming_the_commands_help_when_given():
    result = _invoke("bench", "x.onnx", "--target", "x86-cpu", "--sequence", "3")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--sequence" in lines[0] and "bench --help" in lines[0]


def test_a_bare_group_still_shows_its_help_when_given_no_command():
    result = _invoke("data")
    assert result.exit_code == 2 and "list" in result.output and "fetch" in result.output
