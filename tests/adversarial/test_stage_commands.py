"""Bad inputs to finetune, prune, distill and quantize: refused in one line before any training,
nothing written (no checkpoint, no hidden resume folder, no cache entry)."""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import cases


def _resolve(w, t, value):
    value = str(value)
    if value.startswith("@"):  # @key: a world path; @tmp/x: under the test's tmp dir
        key = value[1:]
        return str(t / key[4:]) if key.startswith("tmp/") else getattr(w, key)
    return value


def _cmd(*args):
    return lambda w, t: [_resolve(w, t, a) for a in args]


def _finetune(*extra, model="@bert", data="@csv", out="@tmp/ft"):
    return _cmd("finetune", model, "--dataset", data, "--out", out, "--max-steps", "1", *extra)


FINETUNE = cases(
    ("finetune-missing-model", _finetune(model="@tmp/nowhere"), "model not found"),
    ("finetune-no-tokenizer", _finetune(model="@no_tokenizer"), "no tokenizer files"),
    ("finetune-unknown-dataset", _finetune(data="imdb-huge"), "unknown dataset"),
    ("finetune-missing-csv", _finetune(data="@tmp/none.csv"), "file not found"),
    ("finetune-one-class", _finetune(data="@one_class"), "single class"),
    ("finetune-nan-label", _finetune(data="@nan_label"), "missing value"),
    ("finetune-latin1", _finetune(data="@latin1"), "not UTF-8"),
    ("finetune-unlabelled", _finetune(data="@unlabelled"), "no labels"),
    ("finetune-no-dev", _finetune(data="@no_test"), "empty dev split"),
    ("finetune-text-col", _finetune("--text-col", "review"), "no column 'review'"),
    ("finetune-epochs-0", _finetune("--epochs", "0"), "--epochs: must be >= 1"),
    ("finetune-batch-0", _finetune("--batch-size", "0"), "--batch-size: must be >= 1"),
    ("finetune-lr", _finetune("--lr", "3"), "--lr: must be in (0, 1)"),
    ("finetune-max-length", _finetune("--max-length", "2"), "--max-length: must be >= 8"),
    ("finetune-out-file", _finetune(out="@a_file"), "is a file"),
    ("finetune-out-under-file", lambda w, t: _finetune(out=f"{w.a_file}/ft")(w, t),
     "lies under a file"),
    ("finetune-out-foreign", _finetune(out="@foreign"), "--force"),
    ("finetune-out-foreign-forced", _finetune("--force", out="@foreign"),
     "not an edgecompress output"),
    ("finetune-config-missing", _finetune("--config", "@tmp/none.toml"), "not found"),
    ("finetune-config-type", _finetune("--config", "@epochs_word"), "finetune.epochs"),
)


def _prune(*extra, model="@bert", data="@csv", out="@tmp/pruned"):
    return _cmd("prune", model, "--out", out, "--dataset", data, "--samples", "8", *extra)


PRUNE = cases(
    ("prune-missing-model", _prune(model="@tmp/nowhere"), "model not found"),
    ("prune-text-col", _prune("--text-col", "review"), "no column 'review'"),
    ("prune-label-col", _prune("--label-col", "stars"), "no column 'stars'"),
    ("prune-config-list", _prune(model="@config_list"), "expected a JSON object"),
    ("prune-heads-1", _prune("--heads", "1.0"), "--heads"),
    ("prune-ffn-negative", _prune("--ffn", "-0.1"), "--ffn"),
    ("prune-layers-1.5", _prune("--layers", "1.5"), "--layers"),
    ("prune-keep-layers-words", _prune("--keep-layers", "a,b"), "comma-separated"),
    ("prune-keep-layers-absent", _prune("--keep-layers", "0,7"), "7"),
    ("prune-drop-heads", _prune("--drop-heads", "zero"), "--drop-heads"),
    ("prune-scope", _prune("--heads", "0.5", "--scope", "cosmic"), "scope"),
    ("prune-importance", _prune("--heads", "0.5", "--importance", "vibes"), "importance"),
    ("prune-nm", _prune("--nm", "2:x"), "--nm"),
    ("prune-nm-order", _prune("--nm", "4:2"), "0 < N < M"),
    ("prune-sparsity", _prune("--sparsity", "1.5"), "sparsity"),
    ("prune-samples-0", _prune("--heads", "0.5", "--samples", "0"), "samples"),
    ("prune-missing-data", _prune("--heads", "0.5", data="@tmp/none.csv"), "file not found"),
    ("prune-one-class", _prune("--heads", "0.5", data="@one_class"), "single class"),
    ("prune-vocab-corpus-missing", _prune("--vocab-corpus", "@tmp/none.csv"), "file not found"),
    ("prune-label-names", _prune("--heads", "0.5", model="@named"), "--label-map"),
    ("prune-label-map-syntax", _prune("--label-map", "pos"), "dataset=model"),
    ("prune-gate-unknown", _prune("--heads", "0.5", "--gate", "moon-base"), "moon-base"),
    ("prune-out-file", _prune("--heads", "0.5", out="@a_file"), "is a file"),
    ("prune-out-foreign", _prune("--heads", "0.5", out="@foreign"), "--force"),
)


def _distill(*extra, teacher="@bert", student="layers:1", data="@csv", out="@tmp/student"):
    return _cmd("distill", "--teacher", teacher, "--student", student, "--dataset", data,
                "--out", out, "--max-steps", "1", *extra)


DISTILL = cases(
    ("distill-missing-teacher", _distill(teacher="@tmp/nowhere"), "model not found"),
    ("distill-text-col", _distill("--text-col", "review"), "no column 'review'"),
    ("distill-label-col", _distill("--label-col", "stars"), "no column 'stars'"),
    ("distill-teacher-no-tokenizer", _distill(teacher="@no_tokenizer"), "no tokenizer files"),
    ("distill-student-unknown", _distill(student="wat"), "not a checkpoint directory"),
    ("distill-student-fresh-zero", _distill(student="fresh:layers=0"), "layers must be >= 1"),
    ("distill-student-fresh-key", _distill(student="fresh:depth=3"), "expected keys"),
    ("distill-student-layers-words", _distill(student="layers:a"), "comma-separated"),
    ("distill-student-layers-absent", _distill(student="layers:9"), "9"),
    ("distill-student-broken", _distill(student="@config_list"), "expected a JSON object"),
    ("distill-missing-data", _distill(data="@tmp/none.csv"), "file not found"),
    ("distill-one-class", _distill(data="@one_class"), "single class"),
    ("distill-unlabelled", _distill(data="@unlabelled"), "no class labels"),
    ("distill-label-names", _distill(teacher="@named"), "--label-map"),
    ("distill-label-map-unknown", _distill("--label-map", "zzz=LABEL_0"), "not a label"),
    ("distill-epochs-0", _distill("--epochs", "0"), "--epochs: must be >= 1"),
    ("distill-temperature-0", _distill("--temperature", "0"), "--temperature: must be > 0"),
    ("distill-layer-map-syntax", _distill("--layer-map", "0-1"), "--layer-map"),
    ("distill-layer-map-absent", _distill("--layer-map", "0:9"), "teacher layer 9"),
    ("distill-attention-layers", _distill("--attention-layers", "some"), "--attention-layers"),
    ("distill-train-size-0", _distill("--train-size", "0"), "--train-size"),
    ("distill-unlabeled-missing", _distill("--unlabeled", "@tmp/none.txt"), "not found"),
    ("distill-qat-target", _distill("--qat-target", "moon-base"), "moon-base"),
    ("distill-out-file", _distill(out="@a_file"), "is a file"),
    ("distill-out-foreign", _distill(out="@foreign"), "--force"),
)


def _quantize(*extra, model="@bert", target="x86-cpu", data="@csv", out="@tmp/q"):
    return _cmd("quantize", model, "--target", target, "--dataset", data, "--out", out, *extra)


QUANTIZE = cases(
    ("quantize-missing-model", _quantize(model="@tmp/nowhere"), "model not found"),
    ("quantize-text-col", _quantize("--text-col", "review"), "no column 'review'"),
    ("quantize-label-map", _quantize("--label-map", "good=positive"), "'good'"),
    ("quantize-unknown-target", _quantize(target="moon-base"), "moon-base"),
    ("quantize-bad-profile", _quantize(target="@profile_threads"), "bad-threads.toml"),
    ("quantize-unknown-scheme", _quantize("--scheme", "int3"), "int3"),
    ("quantize-calib-method", _quantize("--calib-method", "vibes"), "vibes"),
    ("quantize-max-drop-word", _quantize("--max-drop", "lots"), "--max-drop"),
    ("quantize-max-drop-negative", _quantize("--max-drop", "-1"), "max-drop"),
    ("quantize-calib-samples-0", _quantize("--calib-samples", "0"), "--calib-samples"),
    ("quantize-dev-samples-0", _quantize("--dev-samples", "0"), "--dev-samples"),
    ("quantize-missing-data", _quantize(data="@tmp/none.csv"), "file not found"),
    ("quantize-unknown-data", _quantize(data="imdb-huge"), "unknown dataset"),
    ("quantize-too-few-calibration", _quantize("--scheme", "static-int8", "--calib-samples",
                                               "5000"), "5000"),
    ("quantize-max-drop-unlabelled", _quantize("--max-drop", "1", data="@unlabelled"), "label"),
    ("quantize-out-file", _quantize(out="@a_file"), "is a file"),
    ("quantize-out-foreign", _quantize(out="@foreign"), "--force"),
)


@pytest.mark.parametrize("build, said, code", FINETUNE + PRUNE + DISTILL + QUANTIZE)
def test_bad_input_is_refused_in_one_line_when_given_to_a_stage_command(
        build, said, code, world, tmp_path, expect_refusal):
    expect_refusal(build(world, tmp_path), said, code)
