from __future__ import annotations

import gzip

import pytest

from edgecompress.errors import UserError
from edgecompress.targets import bench, load_profile
from edgecompress.targets.bench import gzip_size, peak_rss_mb

KEYS = {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_per_s", "size_bytes", "gzip_bytes",
        "peak_rss_mb", "threads", "runtime", "runtime_version", "batch", "seq_len", "runs", "host"}


@pytest.mark.parametrize("target, runtime", [("x86-cpu", "onnxruntime"), ("rpi5", "litert")])
def test_bench_returns_sane_numbers_when_run_with_few_runs(exported, target, runtime):
    result, _, _ = exported(target, "tiny_plain")
    profile = load_profile(target)
    stats = bench(result.path, profile, warmup=1, runs=7)
    assert KEYS <= set(stats)
    assert 0 < stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert stats["mean_ms"] > 0 and stats["throughput_per_s"] > 0
    assert stats["size_bytes"] == result.path.stat().st_size
    assert 0 < stats["gzip_bytes"]
    assert (stats["runtime"], stats["threads"], stats["runs"]) == (runtime, profile.threads, 7)
    assert (stats["batch"], stats["seq_len"]) == (profile.batch, profile.seq_len)
    assert "CPUs" in stats["host_description"] and stats["runtime_version"]
    assert stats["host"]["cpu_model"] and stats["host"]["threads"] == profile.threads
    # Measured in a child that never loaded torch: far below this (torch-holding) process.
    assert 0 < stats["peak_rss_mb"] < peak_rss_mb()


def test_bench_uses_given_seq_len_when_artifact_is_dynamic(exported):
    result, _, _ = exported("x86-cpu", "tiny_plain")
    stats = bench(result.path, load_profile("x86-cpu"), warmup=0, runs=2, seq_len=32)
    assert stats["seq_len"] == 32 and stats["runs"] == 2


@pytest.mark.parametrize("asked, runs_at", [(20, 32), (32, 32), (50, 64), (128, 128)])
def test_bench_times_the_signature_that_holds_seq_len_when_artifact_has_buckets(exported, asked,
                                                                                runs_at):
    result, _, _ = exported("rpi5", "tiny_plain")
    stats = bench(result.path, load_profile("rpi5"), warmup=0, runs=2, seq_len=asked)
    assert stats["seq_len"] == runs_at


def test_bench_raises_user_error_when_seq_len_exceeds_fixed_shape(exported):
    result, _, _ = exported("rpi5", "tiny_plain")
    with pytest.raises(UserError, match="128"):
        bench(result.path, load_profile("rpi5"), warmup=0, runs=1, seq_len=256)


def test_bench_raises_user_error_when_artifact_is_not_a_model(tmp_path):
    path = tmp_path / "fake.onnx"
    path.write_text("not a model")
    with pytest.raises(UserError, match="not a valid ONNX"):
        bench(path, load_profile("x86-cpu"), warmup=0, runs=1)


def test_bench_raises_user_error_when_artifact_is_missing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        bench(tmp_path / "gone.onnx", load_profile("x86-cpu"))


def test_gzip_size_equals_gzip_module_when_level_is_6(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert gzip_size(path) == len(gzip.compress(data, compresslevel=6, mtime=0))


@pytest.mark.parametrize("target, shape", [("x86-cpu", "unpadded"),
                                           ("rpi5", "signatures 32/64/128")])
def test_bench_times_real_lengths_the_way_the_artifact_runs_them_when_given(exported, target,
                                                                           shape):
    result, _, _ = exported(target, "tiny_plain")
    lengths = [9, 14, 30, 41, 120, 200]  # 200: cut to the longest signature / kept if dynamic
    stats = bench(result.path, load_profile(target), warmup=0, runs=2, lengths=lengths)
    assert stats["real_shape"] == shape
    assert stats["real_lengths"] == {"n": 6, "mean": pytest.approx(69.0), "max": 200}
    assert 0 < stats["p50_real_ms"] and 0 < stats["mean_real_ms"]
    assert stats["seq_len"] == 128  # the seq-128 numbers are still measured
