"""`edgecompress llm ...` through typer's CliRunner: exit codes, one-line errors, JSON."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import torch
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.llm.load import load_lm

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
                                 str(out), "--layers", "1", "--kv-heads", "1", "--ffn", "16",
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
                                               str(out), "--kv-heads", "2"]))
    assert "--kv-heads: must leave a KV head of 2" in line
    assert not out.exists()


def test_llm_prune_refuses_heads_in_one_line_when_family_is_gpt2(tiny_dirs, tmp_path):
    line = _one_line_error(runner.invoke(app, ["llm", "prune", str(tiny_dirs["gpt2"]), "--out",
                                               str(tmp_path / "o"), "--query-heads", "1"]))
    assert "--query-heads" in line and "n_embd" in line


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
