"""The non-model, non-data part of the adversarial world: files in the way, foreign folders,
broken profiles, fake artifacts, half-written runs, tampered bundles, and broken recipes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def _write(path: Path, content: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def add_files(root: Path) -> dict[str, str]:
    f = root / "files"
    good_profile = (Path(__file__).resolve().parents[2] / "edgecompress" / "targets" /
                    "profiles" / "x86-cpu.toml").read_text()
    manifest = json.dumps({"files": {}}).encode()
    sums = (f"{hashlib.sha256(manifest).hexdigest()}  manifest.json\n"
            f"{'0' * 64}  ../outside.txt\n")
    files = {
        "a_file": _write(f / "a-file.txt", "not a directory"),
        "foreign": _write(f / "foreign" / "notes.txt", "the user's own folder"),
        "profile_threads": _write(f / "bad-threads.toml",
                                  'name = "bad"\nformat = "onnx"\nthreads = "four"\n'),
        "profile_toml": _write(f / "broken.toml", "name = [unclosed\n"),
        "profile_dotdot": _write(f / "dotdot.toml", good_profile.replace(
            'name = "x86-cpu"', 'name = "../x"')),
        "fake_onnx": _write(f / "fake" / "model.onnx", "this is not a model"),
        "fake_tflite": _write(f / "fake-tflite" / "model.tflite", "not a flatbuffer"),
        "bin_artifact": _write(f / "model.bin", b"\x00\x01"),
        "bad_manifest_onnx": _write(f / "bad-manifest" / "model.onnx", "x"),
        "empty_run": _write(f / "empty-run" / ".keep", ""),
        "half_run": _write(f / "half-run" / "run.json", '{"kind": "edgecompress-run"'),
        "stub_run": _write(f / "stub-run" / "run.json", json.dumps(
            {"kind": "edgecompress-run", "recipe": "x", "targets": ["x86-cpu"]})),
        "mini_run": _write(f / "mini-run" / "teacher" / "eval.json", json.dumps(
            {"model": "teacher", "split": "test", "accuracy": 0.5, "ci95": [0.2, 0.8], "n": 8,
             "correct": 4, "macro_f1": 0.5, "format": "torch", "scheme": "fp32"})),
        "garbage_report": _write(f / "garbage-report.json", "{not json"),
        "device_bad": _write(f / "device.json", "[1, 2"),
        "bundle_dotdot": _write(f / "bundle-dotdot" / "SHA256SUMS", sums),
        "bundle_none": _write(f / "no-bundle" / "readme.txt", "not a bundle"),
        "outside": _write(f / "outside.txt", "a file the bundle must never read"),
    }
    _write(f / "bundle-dotdot" / "manifest.json", manifest)
    _write(f / "bad-manifest" / "manifest.json", "[]")
    _write(f / "bad-manifest" / "tokenizer.json", "{}")
    _write(f / "mini-run" / "run.json", json.dumps({"kind": "edgecompress-run", "recipe": "x",
                                                    "targets": []}))
    files["mini_run"] = str(Path(files["mini_run"]).parents[1])
    files["empty_run"] = str(Path(files["empty_run"]).parent)
    files["half_run"] = str(Path(files["half_run"]).parent)
    files["stub_run"] = str(Path(files["stub_run"]).parent)
    files["foreign"] = str(Path(files["foreign"]).parent)
    files["bundle_dotdot"] = str(Path(files["bundle_dotdot"]).parent)
    files["bundle_none"] = str(Path(files["bundle_none"]).parent)
    return files


def _recipe(model: str, dataset: str, body: str = "", targets: str = '["x86-cpu"]',
            top: str = "") -> str:
    return (f'name = "bad"\nmodel = "{model}"\ndataset = "{dataset}"\ntargets = {targets}\n'
            f'{top}\n[quantize]\nschemes = {{ x86-cpu = "fp32" }}\n{body}')


def add_recipes(root: Path, w) -> dict[str, str]:
    r = root / "recipes"
    bert, csv = w.models["bert"], w.data["csv"]
    texts = {
        "broken_toml": "name = [\n",
        "unknown_key": _recipe(bert, csv, top='colour = "blue"'),
        "no_model": f'name = "x"\ndataset = "{csv}"\ntargets = ["x86-cpu"]\n',
        "no_targets": _recipe(bert, csv, targets="[]"),
        "unknown_target": _recipe(bert, csv, targets='["moon-base"]'),
        "dup_target": _recipe(bert, csv, targets='["x86-cpu", "rpi5", "x86-cpu"]'),
        "epochs_word": _recipe(bert, csv, '\n[finetune]\nepochs = "three"\n'),
        "unknown_stage_key": _recipe(bert, csv, "\n[prune]\nwidth = 3\n"),
        "scheme_target": _recipe(bert, csv, targets='["rpi5"]'),
        "max_drop_negative": _recipe(bert, csv, "max_drop = -1\n"),
        "bench_zero": _recipe(bert, csv, "\n[bench]\nruns = 0\n"),
        "label_map_list": _recipe(bert, csv, top='label_map = ["pos"]'),
        "label_map_finetune": _recipe(bert, csv, "\n[finetune]\nepochs = 1\n",
                                      top='label_map = { pos = "LABEL_1" }'),
        "missing_model": _recipe(str(root / "nowhere"), csv),
        "missing_data": _recipe(bert, str(root / "nowhere.csv")),
        "no_tokenizer": _recipe(w.models["no_tokenizer"], csv),
        "config_list": _recipe(w.models["config_list"], csv),
        "one_class": _recipe(bert, w.data["one_class"]),
        "label_names": _recipe(w.models["named"], csv),
        "label_map_unknown": _recipe(bert, csv, top='label_map = { zzz = "LABEL_1" }'),
        "embedding_model": _recipe("minilm-l6", csv),
        "no_test_split": _recipe(bert, w.data["no_test"]),
        "bad_student": _recipe(bert, csv, '\n[distill]\nstudent = "wat"\n'),
        "unknown_dataset": _recipe(bert, "imdb-huge"),
    }
    return {name: _write(r / f"{name}.toml", text) for name, text in texts.items()}
