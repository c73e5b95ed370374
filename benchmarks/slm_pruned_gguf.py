"""The pruned + distilled SmolLM2 as GGUF against llama.cpp's Q4_K_M of the unpruned model (issue
27's goal: >= 1.5x its decode tok/s at 1 thread, smaller, KL to the reference no worse).

Quality: each artifact's llama.cpp session (and, with --torch, a checkpoint in torch) against the
fp32 torch reference of smollm2-135m on the held-out bbc-news test windows of EvalConfig (context
512, stride 256, --windows 16: what benchmarks/results/slm_anchors.json used) — mean KL(reference
|| artifact), top-1 agreement and perplexity with their bootstrap intervals (compress/llm/gate.py
score_sessions + metrics.summarize: the gate's and `llm eval`'s math).
Speed and size: the rows of one `edgecompress llm bench ... --threads 1 --out BENCH.json` run
over the same artifacts (interleaved, one child per run, medians), merged by file name.

    edgecompress llm export /work/exp/llmdistill/p6block-kd --target llamacpp --scheme q4_k_m \\
        --out DIR/p6kd-q4_k_m                      # and --scheme q8_0
    edgecompress llm bench DIR/p6kd-q4_k_m/model-q4_k_m.gguf ... --threads 1 --repeats 3 \\
        --out BENCH.json
    nice -n 10 python benchmarks/slm_pruned_gguf.py --bench BENCH.json GGUF... \\
        [--torch CHECKPOINT] [--out benchmarks/results/slm_pruned_gguf.json]

Needs the `llm` extra. Writes JSON without absolute paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL, SPLIT = "smollm2-135m", "test"


class CachedSession:
    """The reference session, its logits kept per sequence (every artifact is scored on the
    same windows, so torch runs once per window)."""

    def __init__(self, session):
        self.session, self.format, self._memo = session, session.format, {}

    def logits(self, ids):
        key = tuple(ids)
        if key not in self._memo:
            self._memo[key] = self.session.logits(ids)
        return self._memo[key]


def label_of(path) -> str:
    """An artifact's folder and file name (export folders all hold model-<scheme>.gguf)."""
    return f"{Path(path).parent.name}/{Path(path).name}"


def quality(args) -> dict[str, dict]:
    """{label: summarize()'s keys} of every artifact (and --torch checkpoint)."""
    import torch

    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.llm.config import EvalConfig
    from edgecompress.compress.llm.gate import score_sessions
    from edgecompress.compress.llm.load import load_lm, load_weights
    from edgecompress.compress.llm.metrics import summarize, token_windows
    from edgecompress.compress.llm.reference import TorchSession
    from edgecompress.compress.llm.sources import MODEL_SOURCES
    from edgecompress.targets.llm.session import open_session

    torch.set_num_threads(args.threads)
    reference = load_lm(MODEL)
    config = EvalConfig(windows=args.windows)
    texts = load_dataset(MODEL_SOURCES[MODEL].dataset).split(SPLIT).texts
    windows = token_windows(reference.tokenizer, texts, config)
    cached = CachedSession(TorchSession(reference.model))
    results = {}
    for label, opener in [*((label_of(a), lambda a=a: open_session(Path(a), threads=args.threads))
                            for a in args.artifacts),
                          *((f"torch:{Path(c).name}", lambda c=c: TorchSession(load_weights(c)))
                            for c in args.torch)]:
        tick = time.perf_counter()
        session = opener()
        results[label] = summarize(score_sessions(session, cached, windows), config)
        session.close()
        print(f"{label}: KL {results[label]['kl']:.4f}, top-1 "
              f"{results[label]['top1_agreement']:.3f} ({time.perf_counter() - tick:.0f} s)",
              file=sys.stderr)
    return {"eval": config.to_json(), "rows": results}


def main(argv: list[str] | None = None) -> None:
    from edgecompress.reports.host import describe_host

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="+", help="GGUF files (as benched)")
    parser.add_argument("--bench", required=True, help="`llm bench --out` JSON of the artifacts")
    parser.add_argument("--torch", action="append", default=[],
                        help="a checkpoint scored in torch too (no speed row)")
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/slm_pruned_gguf.json")
    args = parser.parse_args(argv)
    started, load = time.perf_counter(), os.getloadavg()
    measured = quality(args)
    bench = json.loads(Path(args.bench).read_text())
    speed = {label_of(row["artifact"]): row for row in bench["rows"]}
    rows = []
    for label, scores in measured["rows"].items():
        timed = speed.get(label, {})
        rows.append({"artifact": label, "size_mb": timed.get("size_mb"),
                     "decode_tok_s": timed.get("decode_tok_s"), "ttft_ms": timed.get("ttft_ms"),
                     "peak_rss_mb": timed.get("peak_rss_mb"), "threads": timed.get("threads"),
                     **{k: scores[k] for k in ("kl", "kl_ci", "top1_agreement",
                                               "top1_agreement_ci", "perplexity",
                                               "perplexity_ci", "tokens")}})
    data = {"benchmark": "slm_pruned_gguf", "model": MODEL,
            "reference": "fp32 torch, dequantized from the shipped Q4_1 GGUF",
            "dataset": "bbc-news", "split": SPLIT, "eval": measured["eval"],
            "command": "nice -n 10 python benchmarks/slm_pruned_gguf.py "
                       + " ".join(label_of(a) if os.path.isabs(a) else a
                                  for a in (argv or sys.argv[1:])),
            "bench_settings": bench["settings"], "host": bench["host"],
            "host_description": describe_host(bench["host"]),
            "load_average_quality": {"start": list(load), "end": list(os.getloadavg())},
            "quality_wall_s": time.perf_counter() - started, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    for row in rows:
        print(f"{row['artifact']:<36} {row['size_mb'] or 0:>7.1f} MB "
              f"{row['decode_tok_s'] or 0:>7.1f} tok/s KL {row['kl']:.4f} top-1 "
              f"{row['top1_agreement']:.3f} ppl {row['perplexity']:.2f}")


if __name__ == "__main__":
    main()
