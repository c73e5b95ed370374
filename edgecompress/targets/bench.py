"""Latency, memory and size of one artifact, measured in a fresh child process.

`bench()` starts `python -c 'from edgecompress.targets.bench import main; main()' ARTIFACT ...`
(the same as `python -m edgecompress.targets.bench ARTIFACT ...`): the child loads only the runtime
it measures (no torch), warms up, times `runs` single inferences at the profile's batch x seq_len
and threads, and prints one JSON line. A process per artifact keeps one artifact's memory (and
its peak RSS) out of the next one's numbers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.host import host_info
from edgecompress.targets.inputs import is_image
from edgecompress.targets.profiles import Profile
from edgecompress.targets.runtime_util import artifact_bytes, artifact_files

# Token ids are drawn from [1, vocab_size) (never the pad id 0). Without a vocab_size they stay
# below 1000, inside any vocabulary (a pruned one included); fp32 latency does not depend on them.
DEFAULT_ID_CEILING = 1000
CHILD_TIMEOUT_S = 1800


def bench(artifact: Path, profile: Profile, *, warmup: int = 10, runs: int = 100,
          seq_len: int | None = None, vocab_size: int | None = None,
          lengths: list[int] | None = None) -> dict:
    """Measure `artifact` with the profile's runtime, threads and batch x seq_len, in a child.

    Returns a dict: p50_ms, p90_ms, p99_ms, mean_ms, min_ms, throughput_per_s (samples/s),
    size_bytes, gzip_bytes (an OpenVINO IR's .xml and .bin together), peak_rss_mb (the child's),
    threads, runtime, runtime_version, runtime_options (OpenVINO: inference_precision), batch,
    seq_len, runs, warmup, host (host_info(threads): cpu_model, arch, isa, cores, os, python,
    runtimes, threads), host_description (the one-line text `host` held before), artifact,
    profile. With `lengths` (token counts of real sentences) also p50_real_ms, mean_real_ms,
    real_lengths and real_shape: one batch-1 call per length, each as the artifact runs it
    (dynamic: unpadded; fixed: on the shortest signature that holds it). Raises UserError for a
    missing or invalid artifact, RuntimeError if the child fails otherwise.
    """
    artifact = Path(artifact)
    missing = [p for p in artifact_files(artifact) if not p.is_file()]
    if missing:  # an OpenVINO IR is two files
        raise UserError(f"artifact not found: {missing[0]}")
    if warmup < 0 or runs < 1:
        raise ValueError(f"need warmup >= 0 and runs >= 1, got {warmup} and {runs}")
    args = [str(artifact), "--threads", str(profile.threads), "--batch", str(profile.batch),
            "--seq-len", str(seq_len or profile.seq_len), "--warmup", str(warmup),
            "--runs", str(runs), "--vocab-size", str(vocab_size or DEFAULT_ID_CEILING)]
    if lengths:
        args += ["--lengths", ",".join(str(int(n)) for n in lengths)]
    result = _run_child(args)
    result.update(size_bytes=artifact_bytes(artifact),
                  gzip_bytes=sum(gzip_size(p) for p in artifact_files(artifact)),
                  profile=profile.name)
    return result


def _run_child(args: list[str], module: str = "edgecompress.targets.bench") -> dict:
    """Run `module`'s main(args) in a fresh interpreter; its last JSON line, as a dict. Exit 2
    (the child's UserError) becomes a UserError, any other failure a RuntimeError."""
    command = [sys.executable, "-c", f"from {module} import main; main()", *args]
    env = dict(os.environ)
    # The child must import this package even when it is not installed (a source checkout).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=CHILD_TIMEOUT_S)
    stderr_tail = (proc.stderr.strip().splitlines() or [""])[-1]
    if proc.returncode == 2:  # the child's UserError
        raise UserError(stderr_tail.removeprefix("error: "))
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed (exit {proc.returncode}): {stderr_tail}")
    # Runtimes may print to stdout too (XNNPACK's "Created delegate"); the JSON is the last line.
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"bench child printed no result: {proc.stdout[-300:]!r}")
    return json.loads(lines[-1])


def reply_to_parent(measure: Callable[[], dict]) -> None:
    """The child side of `_run_child`: print `measure()`'s result as one JSON line; a UserError
    becomes one "error: ..." line on stderr and exit 2."""
    try:
        result = measure()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(result), flush=True)


def gzip_size(path: Path, level: int = 6) -> int:
    """Bytes of `path` gzip-compressed at `level`, streamed (never the whole file in memory)."""

    class _Counter:
        size = 0

        def write(self, data) -> int:
            self.size += len(data)
            return len(data)

        def flush(self) -> None:
            pass

    counter = _Counter()
    with open(path, "rb") as src, gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=level,
                                                mtime=0) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return counter.size


def host_description() -> str:
    """Which machine measured: CPU model, architecture, CPU count (latency is this host's)."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or 'unknown CPU'} ({platform.machine()}, " \
           f"{os.cpu_count()} CPUs, {platform.system()})"


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child spawned by a parent
    holding torch and a model reported the parent's ~800 MB instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    unit = 1 << 20 if sys.platform == "darwin" else 1 << 10  # ru_maxrss: bytes on macOS, KiB here
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit


def _inputs(batch: int, seq_len: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic token ids (batch, seq_len) in [1, vocab_size), full attention mask."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, max(vocab_size, 2), size=(batch, seq_len), dtype=np.int64)
    return ids, np.ones((batch, seq_len), dtype=np.int64)


def _pixels(shape: tuple, batch: int) -> np.ndarray:
    """Deterministic standard-normal pixels (batch, C, H, W) for an image model whose input is
    `shape` (batch axis first, None when dynamic); latency does not depend on the values."""
    if any(d is None for d in shape[1:]):
        raise UserError(f"image input of unknown size {shape}: cannot time it")
    return np.random.default_rng(0).standard_normal((batch, *shape[1:])).astype(np.float32)


def measure(artifact: Path, *, threads: int, batch: int, seq_len: int, warmup: int, runs: int,
            vocab_size: int = DEFAULT_ID_CEILING, lengths: list[int] | None = None) -> dict:
    """Time `runs` inferences in THIS process (the child's job): latency stats and peak RSS."""
    from edgecompress.targets.runtimes import load_runner

    runner = load_runner(artifact, threads=threads)
    backend = runner.backend
    if is_image(runner.input_names):  # images: the artifact's own (C, H, W); no seq_len
        shape = backend.shapes["pixel_values"][1]
        batch = runner.fixed_shape[0] if runner.fixed_shape else batch
        feed = backend.feed({"pixel_values": _pixels(shape, batch)})
        return _timed(runner, feed, batch=batch, seq_len=0, warmup=warmup, runs=runs,
                      threads=threads, artifact=artifact)
    shape = runner.fixed_shape or runner.bounded_shape
    if shape:  # time exactly the shape the artifact runs, no padding or chunking
        batch, fixed_seq = shape
        if seq_len > fixed_seq:
            raise UserError(f"{artifact} takes at most {fixed_seq} tokens, asked for {seq_len}")
        if runner.fixed_shape:  # the signature that runs it; bounded: any length up to it
            seq_len = next(b for b in runner.buckets if b >= seq_len)
    ids, mask = _inputs(batch, seq_len, vocab_size)
    feed = backend.feed({"input_ids": ids, "attention_mask": mask})
    result = _timed(runner, feed, batch=batch, seq_len=seq_len, warmup=warmup, runs=runs,
                    threads=threads, artifact=artifact)
    return {**result, **(_real_lengths(runner, lengths, vocab_size) if lengths else {})}


def _timed(runner, feed, *, batch: int, seq_len: int, warmup: int, runs: int, threads: int,
           artifact: Path) -> dict:
    """Warm up, then time `runs` invocations of the cast `feed`; the result dict of measure."""
    backend = runner.backend
    for _ in range(warmup):
        backend.invoke(feed)
    times_ns = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        start = time.perf_counter_ns()
        backend.invoke(feed)  # the runtime call only: inputs were cast once, above
        times_ns[i] = time.perf_counter_ns() - start
    ms = times_ns / 1e6
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    mean = float(ms.mean())
    rss = peak_rss_mb()
    return {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": mean, "min_ms": float(ms.min()),
            "throughput_per_s": batch * 1000.0 / mean, "peak_rss_mb": rss, "threads": threads,
            "runtime": runner.name, "runtime_version": runner.version, "batch": batch,
            "seq_len": seq_len, "runs": runs, "warmup": warmup, "host": host_info(threads),
            # the threads the runtime reports using (ExecuTorch: None when it cannot be set)
            "runtime_threads": getattr(backend, "threads", threads),
            "host_description": host_description(), "artifact": str(artifact),
            # what else the runtime was told (OpenVINO: the inference precision it runs in)
            **({"runtime_options": backend.options} if hasattr(backend, "options") else {})}


def _real_lengths(runner, lengths: list[int], vocab_size: int) -> dict:
    """Batch-1 latency over real sentence lengths, each run the way the artifact runs it: a
    dynamic artifact at the sentence's own length, a fixed one on its shortest signature that
    holds it (padded with masked pad ids). One warm pass, then one timed call per length."""
    backend, buckets = runner.backend, runner.buckets
    shape = runner.fixed_shape or runner.bounded_shape  # (rows, longest) when not dynamic
    rows = shape[0] if shape else 1
    given = {"n": len(lengths), "mean": float(np.mean(lengths)), "max": int(max(lengths))}
    if shape:  # a fixed or bounded artifact takes at most its longest: longer ones are cut
        lengths = [min(n, shape[1]) for n in lengths]
    widths = [next(b for b in buckets if b >= n) if buckets else n for n in lengths]
    feeds = {}
    for n, width in zip(lengths, widths):
        if (n, width) not in feeds:
            ids, mask = _inputs(rows, n, vocab_size)
            pad = ((0, 0), (0, width - n))
            feeds[n, width] = backend.feed({"input_ids": np.pad(ids, pad),
                                            "attention_mask": np.pad(mask, pad)})
    for key in feeds:
        backend.invoke(feeds[key])
    ms = np.empty(len(lengths))
    for i, key in enumerate(zip(lengths, widths)):
        start = time.perf_counter_ns()
        backend.invoke(feeds[key])
        ms[i] = (time.perf_counter_ns() - start) / 1e6
    shape = ("unpadded" if not buckets else f"padded to {buckets[0]}" if len(buckets) == 1
             else "signatures " + "/".join(map(str, buckets)))
    return {"p50_real_ms": float(np.median(ms)), "mean_real_ms": float(ms.mean()),
            "real_lengths": given, "real_shape": shape}


def main(argv: list[str] | None = None) -> None:
    """Child entry point: measure one artifact, print one JSON line; exit 2 on a UserError."""
    parser = argparse.ArgumentParser(prog="python -m edgecompress.targets.bench")
    parser.add_argument("artifact", type=Path)
    for flag, default in (("--threads", 1), ("--batch", 1), ("--seq-len", 128), ("--warmup", 10),
                          ("--runs", 100), ("--vocab-size", DEFAULT_ID_CEILING)):
        parser.add_argument(flag, type=int, default=default)
    parser.add_argument("--lengths", type=lambda text: [int(n) for n in text.split(",")])
    args = parser.parse_args(argv)
    reply_to_parent(lambda: measure(
        args.artifact, threads=args.threads, batch=args.batch, seq_len=args.seq_len,
        warmup=args.warmup, runs=args.runs, vocab_size=args.vocab_size, lengths=args.lengths))


if __name__ == "__main__":
    main()
