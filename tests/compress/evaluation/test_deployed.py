"""Accuracy as deployed: how each kind of runner is run for its number, why padded batches are
not used for dynamic int8, and the eval.json keys every evaluation writes."""

from __future__ import annotations

import numpy as np
import pytest

from edgecompress.compress.data.datasets import Split
from edgecompress.compress.evaluation.evaluate import (
    EvaluatedAs,
    evaluate_split,
    evaluated_as,
    per_class,
    predict,
    predict_as_deployed,
    tokenize,
    truncation,
)
from tests.models import tokenizer

# Lengths from 3 to ~40 tokens: a padded batch of them pads most rows
TEXTS = ["dull", "not bad at all",
         "a gorgeous, witty, seductive movie that never once lets its audience down.",
         "the plot is nothing but boilerplate clichés from start to finish, and the script is "
         "a tired rehash of better films that the director seems to have half remembered.",
         "it's a charming and often affecting journey.", "an utter mess",
         "one of the most exquisitely crafted and emotionally devastating films of the decade",
         "funny"]


class Recorder:
    """A fake runner that records the (batch, seq) of every call and returns (B, 2) logits."""

    def __init__(self, fixed_shape=None, bounded_shape=None, input_names=("input_ids",
                                                                             "attention_mask")):
        self.fixed_shape, self.bounded_shape, self.input_names = (fixed_shape, bounded_shape,
                                                                  input_names)
        self.calls: list[tuple[int, int]] = []

    def run(self, input_ids, attention_mask):
        self.calls.append(input_ids.shape)
        lengths = attention_mask.sum(axis=1).astype(np.float32)
        return np.stack([lengths, -lengths], axis=1)


def test_dynamic_runner_is_run_one_unpadded_sentence_per_call_when_evaluated_as_deployed():
    runner = Recorder()
    predict_as_deployed(runner, tokenizer(), TEXTS)
    lengths = [len(ids) for ids in tokenizer()(TEXTS)["input_ids"]]
    assert runner.calls == [(1, n) for n in lengths]
    assert evaluated_as(runner) == EvaluatedAs(batch=1, lengths="real", seq_len=None)


def test_fixed_shape_runner_is_evaluated_at_its_signature_when_static():
    assert evaluated_as(Recorder(fixed_shape=(1, 128))).to_json() == {
        "batch": 1, "lengths": "fixed", "seq_len": 128}
    assert evaluated_as(Recorder(fixed_shape=(1, 3, 32, 32), input_names=("pixel_values",))) \
        == EvaluatedAs(batch=1, lengths="fixed", seq_len=None)
    runner = Recorder(fixed_shape=(4, 16))
    predict_as_deployed(runner, tokenizer(), TEXTS, max_length=128)
    # four rows per call, cut at the signature's 16 tokens
    assert [shape[0] for shape in runner.calls] == [4, 4]
    assert max(shape[1] for shape in runner.calls) == 16


def test_bounded_runner_is_evaluated_at_its_batch_and_real_lengths_when_executorch_like():
    runner = Recorder(bounded_shape=(1, 128))
    predict_as_deployed(runner, tokenizer(), TEXTS)
    assert evaluated_as(runner) == EvaluatedAs(batch=1, lengths="real", seq_len=None)
    assert len(runner.calls) == len(TEXTS)


@pytest.fixture(scope="module")
def int8_onnx(tmp_path_factory):
    """A tiny BERT exported to ONNX and quantized dynamic int8 (per-tensor activations)."""
    from edgecompress.targets import export, load_profile
    from edgecompress.targets.quantize import QuantOptions
    from tests.models import batch, tiny_bert

    loaded = tiny_bert()
    out = tmp_path_factory.mktemp("int8")
    profile = load_profile("x86-cpu")
    base = export(loaded.module, batch(loaded), profile, out, name="fp32", scheme="fp32")
    result = export(loaded.module, batch(loaded), profile, out, name="int8",
                    scheme="dynamic-int8", quant=QuantOptions(module=loaded.module), base=base)
    return result.path, base.path


def test_dynamic_int8_outputs_depend_on_the_batch_when_run_in_padded_batches(int8_onnx):
    """Why evaluation is batch 1: the same sentence gives other logits next to other rows."""
    from edgecompress.targets import load_runner

    runner = load_runner(int8_onnx[0])
    batched = predict(runner, tokenizer(), TEXTS, batch_size=len(TEXTS))
    alone = np.concatenate([runner.run(**tokenize(tokenizer(), [t], 128)) for t in TEXTS])
    assert np.max(np.abs(batched - alone)) > 1e-4
    assert np.array_equal(predict_as_deployed(runner, tokenizer(), TEXTS), alone)


def test_fp32_onnx_outputs_match_batch_one_closely_but_are_still_run_one_by_one(int8_onnx):
    """fp32 is nearly batch-independent (padding changes only the summation order), which is
    not identical: the deployed path does not batch it either."""
    from edgecompress.targets import load_runner

    runner = load_runner(int8_onnx[1])
    batched = predict(runner, tokenizer(), TEXTS, batch_size=len(TEXTS))
    alone = predict_as_deployed(runner, tokenizer(), TEXTS)
    assert np.max(np.abs(batched - alone)) < 1e-4
    assert evaluated_as(runner).batch == 1


def test_truncation_counts_rows_longer_than_max_length_when_text():
    lengths = [len(ids) for ids in tokenizer()(TEXTS)["input_ids"]]
    cut = sorted(lengths)[-3]  # the third-longest row's length: the two longer ones are cut
    expected = sum(n > cut for n in lengths)
    assert expected >= 1
    assert truncation(tokenizer(), TEXTS, cut) == {"max_length": cut, "rows": expected,
                                                   "share": expected / len(TEXTS)}
    assert truncation(tokenizer(), TEXTS, 512)["rows"] == 0


def test_truncation_is_absent_when_the_inputs_are_images():
    class Images:
        def encode_examples(self, examples):
            return {}

    assert truncation(Images(), ["img"], 128) is None


def test_per_class_names_every_class_in_model_order_when_three_classes():
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0, 2])
    got = per_class(truth, pred, ("negative", "neutral", "positive"))
    assert got["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    table = got["per_class"]
    assert table["labels"] == ["negative", "neutral", "positive"]
    assert table["support"] == [2, 2, 3]
    assert table["recall"] == pytest.approx([0.5, 1.0, 2 / 3])
    assert table["precision"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert table["f1"] == pytest.approx([0.5, 0.8, 0.8])


def test_per_class_scores_zero_when_a_class_is_never_predicted():
    got = per_class(np.array([0, 1]), np.array([0, 0]), ("a", "b"))["per_class"]
    assert got["recall"] == [1.0, 0.0] and got["precision"] == [0.5, 0.0]


def test_evaluate_split_record_carries_the_brief_keys_when_text(int8_onnx):
    from edgecompress.targets import load_runner

    split = Split(tuple(TEXTS), tuple(i % 2 for i in range(len(TEXTS))))
    got = evaluate_split(load_runner(int8_onnx[0]), tokenizer(), split, ("neg", "pos"),
                         max_length=16, reference_pred=np.zeros(len(TEXTS), dtype=np.int64))
    record = got.record
    assert {"accuracy", "ci95", "n", "correct", "macro_f1", "agreement", "per_class",
            "confusion", "truncated", "evaluated_as"} <= set(record)
    assert record["evaluated_as"] == {"batch": 1, "lengths": "real", "seq_len": None}
    assert record["truncated"]["max_length"] == 16 and record["truncated"]["rows"] >= 2
    assert sum(map(sum, record["confusion"])) == record["n"] == len(TEXTS)
    assert np.trace(np.array(record["confusion"])) == record["correct"]
    assert record["accuracy"] == np.mean(got.pred == np.array(split.labels))


def test_evaluate_split_refuses_when_the_split_has_no_labels():
    with pytest.raises(ValueError, match="no labels"):
        evaluate_split(Recorder(), tokenizer(), Split(("a",), None), ("x", "y"))
