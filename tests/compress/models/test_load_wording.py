"""Load errors in our own words: transformers' "look at the above report" (a report this package
silences) becomes one line naming the tensor whose shape config.json contradicts."""

import json
import shutil

from typer.testing import CliRunner

from edgecompress.cli import app


def test_inspect_names_the_mismatched_tensor_when_config_json_disagrees_with_the_weights(
        tiny_bert_dir, tmp_path):
    bad = tmp_path / "edited"
    shutil.copytree(tiny_bert_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "intermediate_size": 128}))
    result = CliRunner().invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "above report" not in line
    assert "intermediate.dense" in line and "[64] in the .safetensors file" in line
    assert "config.json makes it [128]" in line and line.startswith("error: cannot load")
