"""`edgecompress run RECIPE` with a decoder LM (compress/pipeline/llm_plan.py, llm_stages.py,
reports/llm.py) on the tiny random Llama: recipe values refused in one line before anything is
written, the plan's steps and their identities (a changed [distill] reruns distill and the
targets, not prune), and a whole run whose report puts the artifact and the anchors on one
front (and refuses a target whose gate fails)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecompress.cli import app
from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import plan_states
from edgecompress.targets.llm.profile import list_llm_profiles
from tests.compress.llm.export_helpers import write_profile
from tests.compress.llm.test_cli_llm import _one_line_error

runner = CliRunner()

ANCHORS = {"command": "python benchmarks/slm_anchors.py", "dataset": "text", "split": "test",
           "eval": {"context": 32, "stride": 16, "windows": 6},
           "host": {"cpu_model": "Some Other CPU", "arch": "x86_64", "isa": ["avx2"],
                    "cores": 64},
           "rows": [{"tool": "llama.cpp", "format": "gguf", "scheme": "q4_k_m",
                     "edgecompress": False, "size_mb": 0.001, "decode_tok_s": 1e6,
                     "ttft_ms": 1.0, "kl": 10.0, "top1_agreement": 0.1, "perplexity": 400.0},
                    {"tool": "torch", "format": "safetensors", "scheme": "fp32",
                     "edgecompress": False, "size_mb": 1.0, "decode_tok_s": None,
                     "ttft_ms": None, "kl": 0.0, "top1_agreement": 1.0, "perplexity": 300.0},
                    # an edgecompress artifact measured beside the anchors: not an anchor
                    {"tool": "edgecompress", "format": "gguf", "scheme": "q4_k_m-pruned",
                     "edgecompress": True, "size_mb": 0.0005, "decode_tok_s": 2e6,
                     "ttft_ms": 0.5, "kl": 0.0, "top1_agreement": 1.0, "perplexity": 300.0}]}


def _recipe(folder: Path, model: Path, dataset: Path, *, targets=("x86-cpu-llm",),
            extra: str = "", steps: int = 2) -> Path:
    (folder / "anchors.json").write_text(json.dumps(ANCHORS))
    path = folder / "slm.toml"
    path.write_text(f"""name = "tiny-slm"
model = "{model}"
dataset = "{dataset}"
targets = {json.dumps(list(targets))}
anchors = "anchors.json"
{extra}
[prune]
drop_layers = 1
samples = 4
max_length = 16

[distill]
steps = {steps}
batch_size = 2
context = 16
learning_rate = 1e-3

[eval]
context = 32
stride = 16
windows = 3
max_new_tokens = 3

[bench]
repeats = 1
prompt_lengths = [8, 16]
new_tokens = 4
""")
    return path


def _run(recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["run", str(recipe), "--out", str(out), *extra])


@pytest.mark.parametrize("edit, message", [
    ("[distill]\nsteps = 2\nbatch_size = 2\nwarp = 3\n", "unknown key 'distill.warp'"),
    ("[distill]\nsteps = 0\n", "key 'distill.steps': must be >= 1, got 0"),
    ("[eval]\nstride = 64\ncontext = 32\n", "key 'eval.stride': must be below context"),
    ("[bench]\nprompt_lengths = []\n", "key 'bench.prompt_lengths': needs lengths >= 1"),
    ("[prune]\ndrop_layers = -1\n", "key 'prune.drop_layers': must be >= 0, got -1"),
])
def test_llm_recipe_refuses_a_bad_value_in_one_line_when_run(tmp_path, tiny_dirs, text_csv,
                                                             edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'model = "{tiny_dirs["llama"]}"\ndataset = "{text_csv}"\n'
                    f'targets = ["x86-cpu-llm"]\n{edit}')
    result = _run(path, tmp_path / "out")
    assert message in _one_line_error(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("top, message", [
    ('targets = ["x86-cpu"]', "x86-cpu is not a language-model target"),
    ('targets = ["x86-cpu-llm"]\nlabel_map = {a = "b"}', "unknown key 'recipe.label_map'"),
    ('targets = ["x86-cpu-llm"]\nanchors = "missing.json"', "key 'anchors'"),
    ('targets = ["x86-cpu-llm", "x86-cpu-llm"]', "target 'x86-cpu-llm' is listed twice"),
    ('targets = ["llamacpp"]\n[quantize]\nschemes = {llamacpp = "int4-rtn"}',
     "key 'quantize.schemes.llamacpp': target llamacpp has no scheme 'int4-rtn'"),
])
def test_llm_recipe_refuses_a_bad_top_level_key_in_one_line_when_run(tmp_path, tiny_dirs,
                                                                     text_csv, top, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'model = "{tiny_dirs["llama"]}"\ndataset = "{text_csv}"\n{top}\n')
    result = _run(path, tmp_path / "out")
    assert message in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_recipe_refuses_eval_windows_beyond_the_targets_kv_cache_when_run(tmp_path, tiny_dirs,
                                                                            text_csv):
    profile = write_profile(tmp_path, name="small-cache", format="pte", runtime="executorch",
                            scheme="8da4w", kl_max=1.0, top1_min=0.0, extra="max_context = 64\n")
    path = tmp_path / "bad.toml"
    path.write_text(f'model = "{tiny_dirs["llama"]}"\ndataset = "{text_csv}"\n'
                    f'targets = ["{profile}"]\n[eval]\ncontext = 128\nstride = 64\n')
    error = _one_line_error(_run(path, tmp_path / "out"))
    assert "key 'eval.context': 128 tokens exceed target small-cache's KV cache of 64" in error
    assert not (tmp_path / "out").exists()


def test_llm_recipe_names_a_targets_missing_extra_before_pruning_when_run(tmp_path, tiny_dirs,
                                                                          text_csv, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)  # import fails as if absent
    profile = write_profile(tmp_path, name="tiny-pte", format="pte", runtime="executorch",
                            scheme="8da4w", kl_max=1.0, top1_min=0.0, extra="max_context = 128\n")
    path = _recipe(tmp_path, tiny_dirs["llama"], text_csv, targets=(str(profile),))
    error = _one_line_error(_run(path, tmp_path / "out"))
    assert "target tiny-pte needs ExecuTorch: pip install 'edgecompress[executorch]'" in error
    assert not (tmp_path / "out").exists()


def test_llm_recipe_asks_for_the_dataset_in_one_line_when_the_model_has_none(tmp_path,
                                                                             tiny_dirs):
    path = tmp_path / "bad.toml"
    path.write_text(f'model = "{tiny_dirs["llama"]}"\ntargets = ["x86-cpu-llm"]\n')
    assert "key 'dataset': needed" in _one_line_error(_run(path, tmp_path / "out"))


def test_llm_recipe_names_a_cut_the_model_cannot_take_before_writing_when_checked(
        tmp_path, tiny_dirs, text_csv):
    path = _recipe(tmp_path, tiny_dirs["llama"], text_csv, extra="")
    path.write_text(path.read_text().replace("drop_layers = 1", "drop_layers = 3"))
    result = _run(path, tmp_path / "out")
    assert "key 'prune.drop_layers': must leave a layer of 3, got 3" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_llm_plan_has_prune_distill_and_export_eval_bench_per_target_when_parsed(
        tmp_path, tiny_dirs, text_csv):
    recipe = load_recipe(_recipe(tmp_path, tiny_dirs["llama"], text_csv))
    states = plan_states(recipe, tmp_path / "run")
    assert [(s.id, s.stage) for s, _ in states] == [
        ("prune", "llm-prune"), ("distill", "llm-distill"),
        ("export-x86-cpu-llm", "llm-export"), ("eval-x86-cpu-llm", "llm-eval"),
        ("bench-x86-cpu-llm", "llm-bench")]
    assert dict(states[1][0].inputs)["teacher"] == str(tiny_dirs["llama"])
    assert states[4][0].config.threads == (1, 2)  # 1 thread and the target's
    assert recipe.identity()["kind"] == "edgecompress-llm-run"


@pytest.fixture(scope="module")
def finished_run(tiny_dirs, text_csv, tmp_path_factory):
    """One whole run of the tiny Llama: a GGUF f32 target that passes its gate and a q8_0 one
    whose gate (KL 1e-9, top-1 1.0) cannot pass."""
    pytest.importorskip("gguf", reason="GGUF targets need the gguf package: pip install "
                                       "'edgecompress[llm]'")
    pytest.importorskip("llama_cpp", reason="GGUF targets need llama-cpp-python: pip install "
                                            "'edgecompress[llm]'")
    from tests.targets.llm.test_llamacpp import write_vocab_gguf

    folder = tmp_path_factory.mktemp("recipe")
    vocab = write_vocab_gguf(tiny_dirs["llama"], folder / "vocab.gguf") or folder / "vocab.gguf"
    passing = write_profile(folder, name="tiny-gguf", format="gguf", runtime="llama.cpp",
                            scheme="f32", kl_max=1e-3, top1_min=0.9)
    failing = write_profile(folder, name="tiny-q8", format="gguf", runtime="llama.cpp",
                            scheme="q8_0", kl_max=1e-9, top1_min=1.0)
    recipe = _recipe(folder, tiny_dirs["llama"], text_csv, targets=(passing, failing),
                     extra=f'vocab_from = "{vocab}"')
    out = folder / "run"
    result = _run(recipe, out)
    assert result.exit_code == 0, result.output
    return recipe, out, result.output


def test_llm_run_report_puts_the_artifact_and_the_anchors_on_one_front_when_finished(
        finished_run):
    _, out, _ = finished_run
    report = json.loads((out / "report.json").read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"tiny-gguf", "llama.cpp q4_k_m", "torch fp32"}  # not edgecompress's
    ours = rows["tiny-gguf"]
    assert not ours["anchor"] and rows["llama.cpp q4_k_m"]["anchor"]
    assert ours["kl"] is not None and ours["decode_tok_s"] > 0 and ours["size_mb"] > 0
    assert ours["perplexity"] > 1 and ours["ttft_ms"].keys() == {"8", "16"}  # [bench]
    front = {report["rows"][i]["name"] for i in report["front"]}
    assert front == {"tiny-gguf", "llama.cpp q4_k_m"}  # neither dominates the other
    assert any("anchors measured on a different host (Some Other CPU" in n
               for n in report["notes"])
    markdown = (out / "report.md").read_text()
    assert "| llama.cpp q4_k_m (anchor) |" in markdown and "| tiny-gguf |" in markdown
    bench = json.loads((out / "artifacts" / "tiny-gguf" / "bench.json").read_text())
    assert len(bench["load_average"]["start"]) == 3  # a shared host's load, beside its timings


def test_llm_run_refuses_the_target_whose_gate_fails_and_reports_it_when_finished(
        finished_run):
    _, out, output = finished_run
    assert (out / "artifacts" / "tiny-q8" / "refused.json").is_file()
    assert not (out / "artifacts" / "tiny-q8" / "model").exists()
    report = json.loads((out / "report.json").read_text())
    assert [r["target"] for r in report["refused"]] == ["tiny-q8"]
    assert "tiny-q8: refused by the parity gate" in output


def test_llm_run_reruns_distill_and_the_targets_not_prune_when_distill_changes(
        finished_run, tmp_path):
    recipe, out, _ = finished_run
    edited = tmp_path / "slm.toml"
    edited.write_text(recipe.read_text().replace('"anchors.json"', f'"{recipe.parent}/'
                                                 'anchors.json"').replace("steps = 2",
                                                                          "steps = 3"))
    states = {step.id: state for step, state in plan_states(load_recipe(edited), out)}
    assert states["prune"] == "cached"
    assert states["distill"].startswith("to run (config")
    assert states["export-tiny-gguf"] == "to run (after distill)"
    unchanged = {step.id: state for step, state in plan_states(load_recipe(recipe), out)}
    assert unchanged["distill"] == unchanged["bench-tiny-gguf"] == "cached"


def test_shipped_slm_recipe_reads_as_an_llm_recipe_with_the_committed_anchors_when_loaded():
    recipe = load_recipe(Path(__file__).parents[3] / "recipes" / "slm.toml")
    assert recipe.llm is not None and recipe.model == "smollm2-135m"
    # every LLM target the package ships, as issue 27 asks of the recipe
    assert set(recipe.targets) == {profile.name for profile in list_llm_profiles()}
    assert [name for name, _ in recipe.stages] == ["prune", "distill"]
    anchors = json.loads(Path(recipe.llm.anchors).read_text())
    assert anchors["host"]["cpu_model"]
    # the anchors of every format, measured in the one run: the reference, llama.cpp's GGUFs,
    # ONNX Runtime GenAI's int4, litert-torch's dynamic int8, ExecuTorch's 8da4w
    assert {row["format"] for row in anchors["rows"] if not row["edgecompress"]} == \
        {"safetensors", "gguf", "onnx-genai", "tflite", "pte"}
    assert recipe.llm.eval.windows <= anchors["eval"]["windows"]
    assert recipe.llm.eval.context == anchors["eval"]["context"]


def test_llm_recipe_refuses_train_text_that_is_also_held_out_in_one_line_when_checked(
        tmp_path, tiny_dirs):
    import csv

    from tests.compress.llm.tiny import TEXTS

    data = tmp_path / "leak.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "split"])
        writer.writerows([text, split] for text in TEXTS[:5] for split in ("train", "test"))
    result = _run(_recipe(tmp_path, tiny_dirs["llama"], data), tmp_path / "out")
    assert "texts of" in _one_line_error(result) and "train on text the evaluation never sees" \
        in result.output
    assert not (tmp_path / "out").exists()
