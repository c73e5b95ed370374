"""Bad inputs to inspect, init-encoder, eval, data, targets: one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.adversarial.conftest import cases

# Broken checkpoints, reused by every command that loads a model: (model key, what the line says)
BROKEN_MODELS = [
    ("empty_dir", "no config.json"), ("no_tokenizer", "no tokenizer files"),
    ("config_list", "expected a JSON object"), ("config_latin1", "not UTF-8"),
    ("config_badjson", "not valid JSON"), ("config_t5", "unsupported architecture 't5'"),
    ("config_untyped", "unsupported architecture None"), ("truncated", "truncated"),
    ("garbage_weights", "not a valid safetensors"), ("pickled", "no .safetensors"),
    ("plain_config_list", "expected a JSON object"), ("plain_config_bad", "cannot load plain"),
]

INSPECT = cases(
    *[(f"inspect-{key}", lambda w, t, key=key: ["inspect", w.models[key]], said)
      for key, said in BROKEN_MODELS],
    ("inspect-missing", lambda w, t: ["inspect", t / "nowhere"], "model not found"),
    ("inspect-file", lambda w, t: ["inspect", w.a_file], "got a file"),
)

INIT = cases(
    *[(f"init-encoder-{flag}-{value}", lambda w, t, flag=flag, value=value:
       ["init-encoder", t / "enc", f"--{flag}", value], said)
      for flag, value, said in [("num-layers", "0", "--num-layers must be >= 1"),
                                ("num-heads", "0", "--num-heads must be >= 1"),
                                ("ffn-size", "0", "--ffn-size must be >= 1"),
                                ("hidden-size", "0", "--hidden-size must be >= 1"),
                                ("hidden-size", "-8", "--hidden-size must be >= 1"),
                                ("hidden-size", "30", "not divisible"),
                                ("max-positions", "0", "--max-positions must be positive"),
                                ("num-labels", "0", "--num-labels must be positive")]],
    ("init-encoder-out-file", lambda w, t: ["init-encoder", w.a_file], "is a file"),
    ("init-encoder-out-under-file", lambda w, t: ["init-encoder", f"{w.a_file}/enc"],
     "lies under a file"),
    ("init-encoder-out-not-empty", lambda w, t: ["init-encoder", w.foreign], "not empty"),
    ("init-encoder-tokenizer-missing", lambda w, t: ["init-encoder", t / "enc", "--tokenizer",
                                                     t / "nowhere"], "tokenizer not found"),
    ("init-encoder-tokenizer-a-file", lambda w, t: ["init-encoder", t / "enc", "--tokenizer",
                                                    w.csv], "got a file"),
    ("init-encoder-tokenizer-without-files", lambda w, t: [
        "init-encoder", t / "enc", "--tokenizer", w.no_tokenizer], "no tokenizer files"),
)


def _eval(model_key: str, data_key: str = "csv", *extra):
    return lambda w, t: ["eval", w.models[model_key] if model_key in w.models else model_key,
                         "--dataset", w.data[data_key] if data_key in w.data else data_key,
                         *[str(e).format(**w.data, **w.files) for e in extra]]


EVAL = cases(
    *[(f"eval-model-{key}", _eval(key), said) for key, said in BROKEN_MODELS[:4]],
    ("eval-missing-model", lambda w, t: ["eval", t / "nowhere", "--dataset", w.csv],
     "model not found"),
    ("eval-unknown-dataset", _eval("bert", "imdb-huge"), "unknown dataset 'imdb-huge'"),
    ("eval-missing-csv", _eval("bert", "/nowhere/x.csv"), "file not found"),
    ("eval-txt-file", _eval("bert", "txt"), "unsupported file type"),
    *[(f"eval-data-{key}", _eval("bert", key), said) for key, said in [
        ("one_class", "single class"), ("empty", "file is empty"),
        ("header_only", "no data rows"), ("no_text", "no column 'text'"),
        ("empty_label", "no value in column 'label'"), ("nan_label", "missing value"),
        ("empty_text", "no value in column 'text'"), ("latin1", "not UTF-8"),
        ("huge_field", "limit 100,000"), ("ragged", "3 fields"),
        ("dup_header", "appears twice"), ("bad_split", "validation"),
        ("bad_jsonl", "not valid JSON"), ("list_jsonl", "JSON object per line"),
        ("jsonl_list_label", "holds a list")]],
    ("eval-no-test-split", _eval("bert", "no_test"), "the split is empty"),
    ("eval-unknown-split", _eval("bert", "csv", "--split", "holdout"), "no split 'holdout'"),
    ("eval-text-col", _eval("bert", "csv", "--text-col", "review"), "no column 'review'"),
    ("eval-label-col", _eval("bert", "csv", "--label-col", "stars"), "no column 'stars'"),
    ("eval-unlabelled", _eval("bert", "unlabelled"), "no labels"),
    ("eval-label-names", _eval("named", "csv"), "--label-map"),
    ("eval-rt-names", _eval("named", "rt_names"), "fresh"),
    ("eval-class-count", _eval("bert", "three"), "are not the model's labels"),
    ("eval-label-map-syntax", _eval("named", "csv", "--label-map", "pos"), "dataset=model"),
    ("eval-label-map-twice", _eval("named", "csv", "--label-map", "pos=positive,pos=negative"),
     "mapped twice"),
    ("eval-label-map-unknown", _eval("named", "csv", "--label-map", "zzz=positive"),
     "'zzz', which is not a label"),
    ("eval-label-map-wrong-target", _eval("named", "csv", "--label-map", "pos=good,neg=bad"),
     "--label-map"),
    ("eval-reference-missing", _eval("bert", "csv", "--reference", "/nowhere/model"),
     "model not found"),
    ("eval-reference-not-artifact", _eval("bert", "csv", "--reference", "{csv}"),
     "not an ONNX, TFLite, ExecuTorch or OpenVINO artifact"),
    ("eval-artifact-suffix", lambda w, t: ["eval", w.bin_artifact, "--dataset", w.csv],
     "not an ONNX, TFLite, ExecuTorch or OpenVINO artifact"),
    ("eval-artifact-no-tokenizer", lambda w, t: ["eval", w.fake_onnx, "--dataset", w.csv],
     "no tokenizer in"),
    ("eval-artifact-tokenizer-missing", lambda w, t: [
        "eval", w.fake_onnx, "--dataset", w.csv, "--tokenizer", t / "nowhere"],
     "tokenizer not found"),
    ("eval-artifact-bad-manifest", lambda w, t: ["eval", w.bad_manifest_onnx, "--dataset",
                                                 w.csv], "expected a JSON object"),
    ("eval-embedding-model", _eval("minilm-l6", "csv"), "without a classification head"),
    ("eval-max-length", _eval("bert", "csv", "--max-length", "0"), "--max-length"),
    ("eval-threads", _eval("bert", "csv", "--threads", "0"), "--threads"),
)

CATALOG = cases(
    ("data-fetch-unknown", lambda w, t: ["data", "fetch", "imdb-huge"], "unknown dataset"),
    ("data-fetch-file", lambda w, t: ["data", "fetch", w.csv], "unknown dataset"),
    ("targets-show-unknown", lambda w, t: ["targets", "show", "moon-base"], "moon-base"),
    ("targets-show-missing-file", lambda w, t: ["targets", "show", t / "nowhere.toml"],
     "nowhere.toml"),
    ("targets-show-bad-type", lambda w, t: ["targets", "show", w.profile_threads],
     "bad-threads.toml"),
    ("targets-show-bad-toml", lambda w, t: ["targets", "show", w.profile_toml], "broken.toml"),
    ("targets-show-dotdot-name", lambda w, t: ["targets", "show", w.profile_dotdot], "'../x'"),
)


@pytest.mark.parametrize("build, said, code", INSPECT + INIT + EVAL + CATALOG)
def test_bad_input_is_refused_in_one_line_when_given_to_a_model_command(
        build, said, code, world, tmp_path, expect_refusal):
    expect_refusal(build(world, tmp_path), said, code)


@pytest.fixture(scope="module")
def three_label_artifact(tiny_bert_dir, tmp_path_factory):
    """A real 2-output ONNX artifact (tiny BERT, fp32) whose manifest names 3 labels."""
    from edgecompress.compress.pipeline.commands import export_model

    out = tmp_path_factory.mktemp("three-labels") / "x86"
    manifest = export_model(str(tiny_bert_dir), "x86-cpu", out, scheme="fp32")
    (out / "manifest.json").write_text(json.dumps({**manifest, "labels": ["a", "b", "c"]}))
    return out / manifest["artifact"]


def _corrupt(*extra):
    """eval of a copy (inside the case's tmp dir, so it is snapshotted) of the 3-label artifact."""
    def build(w, t, artifact):
        shutil.copytree(artifact.parent, t / "artifact")
        return ["eval", t / "artifact" / artifact.name, "--dataset", w.csv, *extra]
    return build


MANIFEST_VS_MODEL = [
    pytest.param(_corrupt(), "names 3 labels (a, b, c) but model.onnx has 2 outputs: a corrupt "
                 "artifact", id="eval-manifest-3-labels-2-outputs"),
    pytest.param(_corrupt("--label-map", "neg=a,pos=b"), "corrupt artifact",
                 id="eval-manifest-3-labels-with-the-old-hint"),
]


@pytest.mark.parametrize("build, said", MANIFEST_VS_MODEL)
def test_artifact_is_refused_as_corrupt_when_its_manifest_names_more_labels_than_outputs(
        build, said, world, tmp_path, expect_refusal, three_label_artifact):
    expect_refusal(build(world, tmp_path, three_label_artifact), said)


@pytest.mark.parametrize("model", ["bert", "named"])
def test_label_hint_suggests_no_mapping_when_the_dataset_has_more_classes_than_the_model(
        model, world, expect_refusal):
    line = expect_refusal(["eval", world.models[model], "--dataset", world.three],
                          "the model predicts 2 classes, the dataset has 3")
    assert "--label-map" not in line
