"""`--config FILE.toml`: the recipe's keys for one stage, with explicit flags over them."""

import json

from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.cli.config import merged_settings

runner = CliRunner()


def test_flags_override_file_keys_and_land_in_sub_tables_when_merged(tmp_path):
    path = tmp_path / "distill.toml"
    path.write_text("[distill]\ntemperature = 4.0\n[distill.train]\nepochs = 2\nseed = 1\n")
    merged = merged_settings(path, "distill", {"lr": 1e-3, "seed": 7})
    assert merged == {"temperature": 4.0, "train": {"epochs": 2, "seed": 7,
                                                    "learning_rate": 1e-3}}


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


def test_distill_config_file_keeps_the_dev_similarity_flag_when_both_are_given(tmp_path):
    from edgecompress.cli.config import distill_request_from

    path = tmp_path / "distill.toml"
    path.write_text("[distill]\nembedding_cosine_weight = 1.0\n")
    request = distill_request_from(
        path, {"dev_similarity": "lee-similarity"}, teacher="t", student="layers:0",
        dataset="rt-polarity", out=tmp_path / "out", dev_similarity="lee-similarity")
    assert request.dev_similarity == "lee-similarity"
    assert request.config.embedding_cosine_weight == 1.0
