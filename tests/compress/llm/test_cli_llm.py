"""`edgecompress llm ...` through typer's CliRunner: exit codes, one-line errors, JSON."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.llm.load import load_lm
from tests.compress.llm.tiny import TEXTS

runner = CliRunner()
SMALL = ["--context", "32", "--stride", "12", "--windows", "3", "--max-new-tokens", "3",
         "--resamples", "50"]


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_llm_help_lists_commands_without_importing_torch():
    code = ("import sys; from typer.testing import CliRunner; from edgecompress.cli import app;"
            "r = CliRunner().invoke(app, ['llm', '--help']); assert r.exit_code == 0, r.output;"
            "print(all(c in r.output for c in ('inspect', 'eval', 'prune', 'list')),"
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True False"


def test_llm_inspect_prints_json_facts_when_given_a_checkpoint(tiny_dirs):
    result = runner.invoke(app, ["llm", "inspect", str(tiny_dirs["qwen2"]), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["family"], info["layers"], info["heads"], info["kv_heads"]) == ("qwen2", 3, 4, 2)


def test_llm_eval_gives_zero_kl_when_reference_is_the_model(tiny_dirs, text_csv):
    model = str(tiny_dirs["llama"])
    result = runner.invoke(app, ["llm", "eval", model, "--reference", model, "--dataset",
                                 str(text_csv), *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["kl"] == 0.0 and data["top1_agreement"] == 1.0 and data["windows"] == 3
    assert data["continuations"][0]["same_prefix"] == 3


def test_llm_eval_prints_a_summary_when_not_json(tiny_dirs, text_csv):
    result = runner.invoke(app, ["llm", "eval", str(tiny_dirs["gpt2"]), "--dataset",
                                 str(text_csv), *SMALL])
    assert result.exit_code == 0, result.output
    assert "perplexity" in result.output and "> The capital of France is|" in result.output


def test_llm_prune_writes_a_reloadable_checkpoint_when_layers_heads_and_ffn_cut(tiny_dirs,
                                                                               text_csv,
                                                                               tmp_path):
    out = tmp_path / "pruned"
    result = runner.invoke(app, ["llm", "prune", str(tiny_dirs["gemma3_text"]), "--out",
                                 str(out), "--drop-layers", "1", "--drop-kv-heads", "1",
                                 "--drop-ffn", "16",
                                 "--dataset", str(text_csv), "--samples", "4", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "prune_report.json").read_text())
    assert report["after"]["layers"] == 2 and report["after"]["kv_heads"] == 1
    assert report["after"]["ffn"] == 48 and len(report["layers_kept"]) == 2
    reloaded = load_lm(out)
    logits = reloaded.model(input_ids=torch.tensor([[1, 40, 41]])).logits
    assert logits.shape == (1, 3, len(reloaded.tokenizer))


def test_llm_prune_refuses_cut_in_one_line_before_loading_when_too_many_kv_heads(
        tiny_dirs, tmp_path):
    out = tmp_path / "pruned"
    line = _one_line_error(runner.invoke(app, ["llm", "prune", str(tiny_dirs["llama"]), "--out",
                                               str(out), "--drop-kv-heads", "2",
                                               "--dataset", "unused.csv"]))
    assert "--drop-kv-heads: must leave a KV head of 2" in line
    assert not out.exists()


def test_llm_prune_refuses_heads_in_one_line_when_family_is_gpt2(tiny_dirs, tmp_path):
    line = _one_line_error(runner.invoke(app, ["llm", "prune", str(tiny_dirs["gpt2"]), "--out",
                                               str(tmp_path / "o"), "--drop-query-heads", "1",
                                               "--dataset", "unused.csv"]))
    assert "--drop-query-heads" in line and "n_embd" in line


def _no_weights(monkeypatch):
    """Loading weights fails the test: a refusal must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("weights loaded")
    monkeypatch.setattr("edgecompress.compress.llm.load.load_weights", refuse)


@pytest.mark.parametrize("command", [["eval"], ["prune", "--drop-layers", "1"]])
def test_llm_command_asks_for_dataset_in_one_line_before_loading_when_model_is_not_registry(
        tiny_dirs, tmp_path, monkeypatch, command):
    _no_weights(monkeypatch)
    out = tmp_path / "pruned"
    args = ["llm", command[0], str(tiny_dirs["llama"]), *command[1:]]
    if command[0] == "prune":
        args += ["--out", str(out)]
    line = _one_line_error(runner.invoke(app, args))
    assert line.startswith("error: --dataset is needed") and "smollm2-135m" in line
    assert not out.exists()


def test_llm_prune_needs_no_dataset_when_it_only_keeps_listed_layers(tiny_dirs, tmp_path):
    out = tmp_path / "pruned"
    result = runner.invoke(app, ["llm", "prune", str(tiny_dirs["llama"]), "--out", str(out),
                                 "--keep-layers", "0,2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "prune_report.json").read_text())
    assert report["dataset"] is None and report["layers_kept"] == [0, 2]
    assert report["source"] is None


def test_llm_prune_calibrates_on_bbc_news_when_model_was_pruned_from_smollm2(tiny_dirs, tmp_path,
                                                                             monkeypatch):
    # a checkpoint whose prune_report.json records the registry model it came from
    model = tmp_path / "from-smollm2"
    model.mkdir()
    for file in tiny_dirs["llama"].iterdir():
        (model / file.name).write_bytes(file.read_bytes())
    (model / "prune_report.json").write_text(json.dumps({"model": "smollm2-135m",
                                                         "source": "smollm2-135m"}))
    asked = []

    def texts(dataset, split):
        asked.append((dataset, split))
        return tuple(TEXTS)

    monkeypatch.setattr("edgecompress.cli.llm._texts", texts)
    out = tmp_path / "again"
    result = runner.invoke(app, ["llm", "prune", str(model), "--out", str(out),
                                 "--drop-layers", "1", "--samples", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert asked == [("bbc-news", "train")]
    report = json.loads((out / "prune_report.json").read_text())
    assert (report["source"], report["dataset"]) == ("smollm2-135m", "bbc-news")


def test_llm_prune_refuses_old_count_flags_when_given_layers(tiny_dirs, tmp_path):
    # --layers / --ffn are `prune`'s fractions; here the counts are --drop-layers / --drop-ffn
    result = runner.invoke(app, ["llm", "prune", str(tiny_dirs["llama"]), "--out",
                                 str(tmp_path / "o"), "--layers", "1"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_llm_eval_refuses_in_one_line_when_prompt_exceeds_context(tiny_dirs, text_csv):
    long_prompt = "word " * 300
    line = _one_line_error(runner.invoke(app, ["llm", "eval", str(tiny_dirs["llama"]),
                                               "--dataset", str(text_csv), *SMALL, "--prompt",
                                               long_prompt]))
    assert "exceeds the model's context of 256" in line


def test_llm_eval_refuses_in_one_line_when_tokenizers_differ(tiny_dirs, tiny_bert_dir, tmp_path,
                                                             text_csv):
    # a decoder checkpoint carrying another vocabulary: the tiny llama with BERT's tokenizer
    other = tmp_path / "other"
    other.mkdir()
    for file in tiny_dirs["llama"].iterdir():
        if not file.name.startswith(("tokenizer", "special")):
            (other / file.name).write_bytes(file.read_bytes())
    for file in tiny_bert_dir.iterdir():
        if file.name.startswith(("tokenizer", "vocab", "special")):
            (other / file.name).write_bytes(file.read_bytes())
    line = _one_line_error(runner.invoke(app, ["llm", "eval", str(tiny_dirs["llama"]),
                                               "--reference", str(other), "--dataset",
                                               str(text_csv), *SMALL]))
    assert "does not match" in line


def test_llm_inspect_refuses_in_one_line_when_gguf_architecture_unsupported(tmp_path):
    def string(text):
        return struct.pack("<Q", len(text)) + text.encode()

    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + string("general.architecture")
                     + struct.pack("<I", 8) + string("rwkv6"))
    line = _one_line_error(runner.invoke(app, ["llm", "inspect", str(path)]))
    assert "GGUF architecture 'rwkv6' is not supported" in line


def test_inspect_points_to_llm_in_one_line_when_given_a_decoder(tiny_dirs):
    line = _one_line_error(runner.invoke(app, ["inspect", str(tiny_dirs["phi3"])]))
    assert "edgecompress llm" in line


def test_llm_list_names_the_registry_model():
    result = runner.invoke(app, ["llm", "list", "--json"])
    assert result.exit_code == 0
    assert [row["name"] for row in json.loads(result.output)] == ["smollm2-135m"]


def test_default_dataset_is_bbc_news_only_when_model_is_smollm2_or_pruned_from_it(tmp_path):
    from edgecompress.compress.llm.sources import default_dataset

    assert default_dataset("smollm2-135m") == "bbc-news"
    pruned, other = tmp_path / "pruned", tmp_path / "other"
    for folder, source in ((pruned, "smollm2-135m"), (other, None)):
        folder.mkdir()
        (folder / "prune_report.json").write_text(json.dumps({"model": "x", "source": source}))
    assert default_dataset(pruned) == "bbc-news"
    assert default_dataset(other) is None and default_dataset(tmp_path / "missing") is None
