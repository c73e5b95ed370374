"""Speed, memory and size of LLM artifacts, each measured in a fresh child process.

Per artifact and thread count, one child opens the artifact's session (session.py), warms up on
a short prompt, then times greedy generation: time to first token (TTFT) for each prompt length
(128 and 512 tokens by default: prefill + the first pick) and decode tokens/s over
`new_tokens` new tokens after the shortest prompt (forwards of one token with the KV cache).
Prompts are fixed pseudo-random token ids (seed 0) from the artifact's vocabulary; EOS is
masked, so every run decodes exactly `new_tokens`. Children run interleaved (repeat r runs every
artifact x threads once before repeat r + 1), so a load change on a shared host spreads over all
of them, and each number is the median over repeats. Peak RSS is the child's own (VmHWM).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.bench import _run_child, peak_rss_mb, reply_to_parent
from edgecompress.targets.host import host_id, host_info
from edgecompress.targets.llm.session import artifact_format, open_session

PROMPT_LENGTHS = (128, 512)
NEW_TOKENS = 128
WARMUP_TOKENS = (16, 4)  # prompt, new tokens of the untimed warm-up
LLM_RUNTIME_PACKAGES = ("onnxruntime-genai", "llama-cpp-python")  # beside host.py's runtimes


def llm_host(threads: int | None = None) -> dict:
    """host_info(threads) with the installed LLM runtimes' versions added to its `runtimes`."""
    from importlib.metadata import PackageNotFoundError, version

    host = host_info(threads)
    for name in LLM_RUNTIME_PACKAGES:
        try:
            host["runtimes"][name] = version(name)
        except PackageNotFoundError:
            pass  # not installed: absent
    return host


def artifact_bytes(path: Path) -> int:
    """Bytes of an artifact: the file, or every file of its folder (weights, graph, config,
    tokenizer: what is shipped)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prompt_ids(length: int, vocab: int) -> list[int]:
    """`length` fixed pseudo-random token ids in [min(100, vocab // 2), vocab) (seed 0: every
    artifact of a vocabulary gets the same prompt); low ids (special tokens) are avoided."""
    low = min(100, vocab // 2)
    return np.random.default_rng(0).integers(low, vocab, size=length).tolist()


def measure(path: Path, *, threads: int, prompt_lengths: tuple[int, ...], new_tokens: int
            ) -> dict:
    """One child's numbers for artifact `path` (this process): ttft_s per prompt length,
    decode_tok_s, peak_rss_mb."""
    session = open_session(path, threads=threads)
    vocab = session.logits([1]).shape[1]
    session.generate(prompt_ids(WARMUP_TOKENS[0], vocab), WARMUP_TOKENS[1])
    shortest = min(prompt_lengths)
    ttft, decode = {}, None
    for length in sorted(prompt_lengths):
        generation = session.generate(prompt_ids(length, vocab),
                                      new_tokens if length == shortest else 1)
        ttft[str(length)] = generation.ttft_s
        if length == shortest:
            decode = generation
    return {"ttft_s": ttft, "decode_tok_s": decode.decode_tok_s, "decode_tokens": new_tokens,
            "decode_after": shortest, "peak_rss_mb": peak_rss_mb()}


def bench_llm(artifacts: list[Path], *, threads: tuple[int, ...], repeats: int = 3,
              prompt_lengths: tuple[int, ...] = PROMPT_LENGTHS,
              new_tokens: int = NEW_TOKENS) -> dict:
    """Bench every artifact at every thread count, `repeats` interleaved rounds of one child each.

    Returns {"host": llm_host(), "host_id", "settings", "rows": [one per artifact x threads:
    artifact, format, threads, size_bytes, size_mb, ttft_ms {length: median}, decode_tok_s
    (median), peak_rss_mb (max), runs (every child's numbers)]}. Raises UserError for a missing
    or unknown artifact, bad settings, or a prompt + new tokens beyond an artifact's context
    (the child's one line).
    """
    if repeats < 1 or new_tokens < 2 or not threads or min(threads) < 1 \
            or not prompt_lengths or min(prompt_lengths) < 1:
        raise UserError(f"need repeats >= 1, new tokens >= 2, threads >= 1 and prompt lengths "
                        f">= 1; got {repeats}, {new_tokens}, {threads}, {prompt_lengths}")
    formats = {Path(a): artifact_format(Path(a)) for a in artifacts}  # each says so first
    runs: dict[tuple[Path, int], list[dict]] = {(a, t): [] for a in formats for t in threads}
    for _ in range(repeats):
        for artifact, count in runs:
            runs[artifact, count].append(_run_child(
                [str(artifact), "--threads", str(count), "--new-tokens", str(new_tokens),
                 "--prompt-lengths", ",".join(map(str, prompt_lengths))],
                module="edgecompress.targets.llm.bench"))
    host = llm_host()
    return {"host": host, "host_id": host_id(host),
            "settings": {"repeats": repeats, "prompt_lengths": list(prompt_lengths),
                         "new_tokens": new_tokens, "threads": list(threads),
                         "statistic": "median over interleaved repeats, one child process each"},
            "rows": [_row(artifact, formats[artifact], count, done)
                     for (artifact, count), done in runs.items()]}


def _row(artifact: Path, fmt: str, threads: int, runs: list[dict]) -> dict:
    size = artifact_bytes(artifact)
    lengths = runs[0]["ttft_s"]
    return {"artifact": str(artifact), "format": fmt, "threads": threads, "size_bytes": size,
            "size_mb": size / 1e6,
            "ttft_ms": {n: 1000 * statistics.median(r["ttft_s"][n] for r in runs)
                        for n in lengths},
            "decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": runs}


def main(argv: list[str] | None = None) -> None:
    """Child entry point: measure one artifact at one thread count, print one JSON line; exit 2
    on a UserError."""
    parser = argparse.ArgumentParser(prog="python -m edgecompress.targets.llm.bench")
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    parser.add_argument("--prompt-lengths", default=",".join(map(str, PROMPT_LENGTHS)),
                        type=lambda text: tuple(int(n) for n in text.split(",")))
    args = parser.parse_args(argv)
    reply_to_parent(lambda: measure(args.artifact, threads=args.threads,
                                    new_tokens=args.new_tokens,
                                    prompt_lengths=args.prompt_lengths))


if __name__ == "__main__":
    main()
