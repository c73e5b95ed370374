"""`--config FILE.toml`: the recipe's keys for one stage, with the flags typed over them."""

import json

from typer.testing import CliRunner

from edgecompress.cli import app
from tests.capture import captured

runner = CliRunner()



def test_finetune_flag_wins_over_config_file_when_it_equals_its_default(monkeypatch, tmp_path):
    # the old rule kept only flags that differ from their default: the file's 2 epochs won
    seen = captured(monkeypatch, "edgecompress.compress.finetune.stage", "run_finetune")
    path = tmp_path / "finetune.toml"
    path.write_text("[finetune]\nepochs = 2\nbatch_size = 8\n")
    result = runner.invoke(app, ["finetune", "m", "--dataset", "d", "--out", str(tmp_path / "o"),
                                 "--config", str(path), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert seen[0].config.epochs == 1 and seen[0].config.batch_size == 8


def test_distill_flags_land_in_the_train_table_when_a_config_file_is_given(monkeypatch,
                                                                          tmp_path):
    seen = captured(monkeypatch, "edgecompress.compress.distill.stage", "run_distill")
    path = tmp_path / "distill.toml"
    path.write_text("[distill]\ntemperature = 4.0\n[distill.train]\nepochs = 2\nseed = 1\n")
    result = runner.invoke(app, ["distill", "--teacher", "t", "--student", "layers:0",
                                 "--dataset", "d", "--out", str(tmp_path / "s"), "--config",
                                 str(path), "--lr", "1e-3", "--seed", "7"])
    assert result.exit_code == 0, result.output
    config = seen[0].config
    assert (config.temperature, config.train.epochs, config.train.seed,
            config.train.learning_rate) == (4.0, 2, 7, 1e-3)


def test_distill_train_keys_default_to_distillation_training_when_the_table_omits_them(
        monkeypatch, tmp_path):
    seen = captured(monkeypatch, "edgecompress.compress.distill.stage", "run_distill")
    result = runner.invoke(app, ["distill", "--teacher", "t", "--student", "layers:0",
                                 "--dataset", "d", "--out", str(tmp_path / "s"), "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    assert seen[0].config.train.epochs == 3  # DistillConfig's, not FinetuneConfig's 1


def test_prune_reads_its_config_file_when_given(tiny_bert_dir, sentiment_csv, tmp_path):
    path = tmp_path / "prune.toml"
    path.write_text('heads = 0.25\nimportance = "magnitude"\n')
    out = tmp_path / "pruned"
    result = runner.invoke(app, ["prune", str(tiny_bert_dir), "--out", str(out), "--config",
                                 str(path), "--no-eval", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "prune.json").read_text())
    assert manifest["config"]["heads"] == 0.25 and manifest["config"]["importance"] == "magnitude"
    assert manifest["shapes_after"]["heads"] != manifest["shapes_before"]["heads"]


def test_config_file_errors_name_the_file_and_key_when_a_value_is_bad(tiny_bert_dir,
                                                                      sentiment_csv, tmp_path):
    path = tmp_path / "distill.toml"
    path.write_text('[distill]\ntemperature = "hot"\n')
    result = runner.invoke(app, ["distill", "--teacher", str(tiny_bert_dir), "--student",
                                 "layers:1", "--dataset", str(sentiment_csv), "--out",
                                 str(tmp_path / "s"), "--config", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "distill.toml" in lines[0]
    assert "key 'distill.temperature': expected a number, got 'hot'" in lines[0]
    assert not (tmp_path / "s").exists()


def test_flag_errors_name_the_flag_when_a_config_file_sets_other_keys(tmp_path):
    path = tmp_path / "distill.toml"
    path.write_text("[distill]\ntemperature = 4.0\n")
    result = runner.invoke(app, ["distill", "--teacher", "t", "--student", "layers:1",
                                 "--dataset", "d", "--out", str(tmp_path / "s"), "--config",
                                 str(path), "--kd-weight", "-1"])
    assert result.exit_code == 2
    assert "--kd-weight: must be >= 0, got -1.0" in result.output
    assert "key '" not in result.output


def test_distill_config_file_keeps_the_dev_similarity_flag_when_both_are_given(monkeypatch,
                                                                               tmp_path):
    seen = captured(monkeypatch, "edgecompress.compress.distill.stage", "run_distill")
    path = tmp_path / "distill.toml"
    path.write_text("[distill]\nembedding_cosine_weight = 1.0\nqat_target = \"x86-cpu\"\n")
    result = runner.invoke(app, ["distill", "--teacher", "t", "--student", "layers:0",
                                 "--dataset", "rt-polarity", "--out", str(tmp_path / "out"),
                                 "--config", str(path), "--dev-similarity", "lee-similarity"])
    assert result.exit_code == 0, result.output
    request = seen[0]
    assert request.dev_similarity == "lee-similarity" and request.qat_target == "x86-cpu"
    assert request.config.embedding_cosine_weight == 1.0
