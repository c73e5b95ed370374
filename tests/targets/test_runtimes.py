from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgecompress.errors import UserError
from edgecompress.targets import export, load_profile, load_runner, torch_runner
from tests.models import batch


@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_load_runner_raises_user_error_when_file_is_text_renamed(suffix, tmp_path):
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are my notes, not a model\n")
    with pytest.raises(UserError, match="not a valid"):
        load_runner(path)


def test_load_runner_lets_a_bug_through_when_the_backend_fails_for_another_reason(tmp_path,
                                                                                  monkeypatch):
    from edgecompress.targets import runtimes

    class Broken:
        def __init__(self, *args, **kwargs):
            raise AttributeError("a bug in the backend, not a bad file")

    monkeypatch.setitem(runtimes._BACKENDS, ".onnx", (Broken, "ONNX"))
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(AttributeError, match="a bug in the backend"):
        load_runner(path)


def test_load_runner_raises_user_error_when_suffix_is_unknown(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match=r"\.onnx.*\.tflite"):
        load_runner(path)


def test_load_runner_raises_user_error_when_file_is_missing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_runner(tmp_path / "ghost.onnx")


def test_torch_runner_returns_float32_rows_when_given_int_batch(models):
    loaded = models["tiny_plain"]
    inputs = batch(loaded)
    out = torch_runner(loaded.module).run(inputs["input_ids"].astype(np.int32),
                                          inputs["attention_mask"])
    assert out.dtype == np.float32 and out.shape == (4, 2)


def test_onnx_runner_is_dynamic_when_exported_for_x86(exported):
    result, loaded, _ = exported("x86-cpu", "tiny_plain")
    runner = load_runner(result.path, threads=1)
    assert runner.name == "onnxruntime" and runner.fixed_shape is None
    inputs = batch(loaded, seq_len=40)  # another batch shape than the export's
    ids, mask = np.repeat(inputs["input_ids"], 2, 0), np.repeat(inputs["attention_mask"], 2, 0)
    expected = torch_runner(loaded.module).run(ids, mask)
    np.testing.assert_allclose(runner.run(ids, mask), expected, atol=1e-4)


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_plain"])
def test_fixed_runner_matches_torch_when_batch_is_3_and_seq_is_short(exported, model):
    result, loaded, _ = exported("rpi5", model)
    runner = load_runner(result.path)
    assert runner.name == "litert" and runner.fixed_shape == (1, 128)
    inputs = batch(loaded)  # (4, 18) with padding, cut to 3 rows of 7 tokens
    ids, mask = inputs["input_ids"][:3, :7], inputs["attention_mask"][:3, :7]
    out = runner.run(ids, mask)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out, torch_runner(loaded.module).run(ids, mask), atol=1e-4)


def test_fixed_runner_raises_user_error_when_seq_exceeds_fixed_length(exported):
    result, _, _ = exported("rpi5", "tiny_plain")
    ids = np.ones((1, 129), dtype=np.int64)
    with pytest.raises(UserError, match="at most 128"):
        load_runner(result.path).run(ids, ids)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_fixed_runner_pads_the_last_chunk_when_batch_is_not_a_multiple(fmt, models, tmp_path):
    # A user profile exported at batch 2 x seq 16: batch 5 runs as 3 chunks, the last padded.
    base = load_profile("rpi5" if fmt == "tflite" else "x86-cpu")
    profile = dataclasses.replace(base, name="b2", shape="fixed", batch=2, seq_len=16, buckets=())
    loaded = models["tiny_plain"]
    result = export(loaded.module, batch(loaded, seq_len=16), profile, tmp_path, scheme="fp32")
    runner = load_runner(result.path)
    assert runner.fixed_shape == (2, 16)
    inputs = batch(loaded, seq_len=12)
    ids = np.concatenate([inputs["input_ids"], inputs["input_ids"][:1]])  # (5, 12)
    mask = np.concatenate([inputs["attention_mask"], inputs["attention_mask"][:1]])
    out = runner.run(ids, mask)
    assert out.shape == (5, 2) and np.isfinite(out).all()
    np.testing.assert_allclose(out, torch_runner(loaded.module).run(ids, mask), atol=1e-4)


def test_runner_raises_user_error_when_inputs_differ_in_shape(models):
    runner = torch_runner(models["tiny_plain"].module)
    with pytest.raises(UserError, match="one shape"):
        runner.run(np.ones((2, 5), np.int64), np.ones((2, 6), np.int64))


@pytest.mark.parametrize("real, expected", [(1, 32), (32, 32), (33, 64), (64, 64), (65, 128),
                                            (128, 128)])
def test_bucket_for_picks_the_shortest_bucket_holding_every_token_when_given_a_mask(real,
                                                                                   expected):
    from edgecompress.targets.runtimes import bucket_for

    mask = np.zeros((2, 128), dtype=np.int64)
    mask[0, :real // 2 or 1], mask[1, :real] = 1, 1  # the longer row decides
    assert bucket_for(mask, (32, 64, 128)) == expected


def _signature_calls(monkeypatch) -> list[int]:
    """Record the sequence length of every LiteRT signature invoked from now on."""
    from edgecompress.targets import runtimes

    calls, invoke = [], runtimes._LiteRtSignature.invoke
    monkeypatch.setattr(runtimes._LiteRtSignature, "invoke",
                        lambda self, feed: calls.append(self.width) or invoke(self, feed))
    return calls


def test_bucketed_runner_runs_each_row_on_its_shortest_signature_and_matches_torch(exported,
                                                                                  monkeypatch):
    result, loaded, _ = exported("arm64-phone", "tiny_bert")
    inputs = batch(loaded, seq_len=100)  # every sentence is short: real lengths under 32
    inputs["input_ids"][-1, :90] = inputs["input_ids"][-1, 1]  # one row of 90 real tokens
    inputs["attention_mask"][-1, :90] = 1
    runner = load_runner(result.path)
    assert runner.fixed_shape == (1, 128) and runner.buckets == (32, 64, 128)
    calls = _signature_calls(monkeypatch)
    out = runner.run(**inputs)
    assert calls == [32] * (len(calls) - 1) + [128]
    expected = torch_runner(loaded.module).run(**inputs)
    assert np.abs(out - expected).max() < 1e-4


def test_load_runner_raises_user_error_when_no_signature_has_that_length(exported):
    result, _, _ = exported("rpi5", "tiny_plain")
    assert load_runner(result.path, seq=64).buckets == (64,)
    with pytest.raises(UserError, match="no signature takes 48 tokens"):
        load_runner(result.path, seq=48)
