"""What each encoder family gains from its target's int8 scheme: fp32 vs int8 size and p50 latency
for x86-cpu (ONNX Runtime) and arm64-phone (LiteRT), per family, on the same host.

Tiny random classifiers (hidden 128, 4 layers, 4 heads, FFN 512, the MiniLM WordPiece vocabulary),
batch 1 x 128 tokens, 1 thread on both runtimes (a 2-core host cannot time 4 threads fairly —
docs/design). Each artifact goes through the project's exporter (parity gate included) and its
bench (a child process per artifact). Random weights: the numbers say what the format and scheme
do to each family's graph, not anything about accuracy.

    .venv/bin/python benchmarks/families.py [--families bert,roberta] [--runs 100]

Writes JSON (default benchmarks/results/families.json) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch

from edgecompress.compress.evaluation.artifacts import parity_sample
from edgecompress.compress.models.loading import ClassifierModule, resolve_model_path
from edgecompress.fsutil import atomic_write_json
from edgecompress.targets import bench, export, host_info, load_profile

FAMILIES = ("bert", "distilbert", "roberta", "xlm-roberta", "albert", "electra", "deberta-v2",
            "mobilebert", "modernbert")
TARGETS = ("x86-cpu", "arm64-phone")
SEQ = 128
SHAPE = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
         "intermediate_size": 512, "max_position_embeddings": 512, "num_labels": 2}


def _classes(name: str):
    """(config class, model class, family-specific config keys)."""
    import transformers as T

    factorised = {"embedding_size": 64}
    return {
        "bert": (T.BertConfig, T.BertForSequenceClassification, {}),
        "roberta": (T.RobertaConfig, T.RobertaForSequenceClassification, {"pad_token_id": 0}),
        "xlm-roberta": (T.XLMRobertaConfig, T.XLMRobertaForSequenceClassification,
                        {"pad_token_id": 0}),
        "electra": (T.ElectraConfig, T.ElectraForSequenceClassification, factorised),
        "deberta-v2": (T.DebertaV2Config, T.DebertaV2ForSequenceClassification,
                       {"relative_attention": True, "pos_att_type": ["p2c", "c2p"],
                        "position_buckets": 64}),
        "albert": (T.AlbertConfig, T.AlbertForSequenceClassification, factorised),
        "mobilebert": (T.MobileBertConfig, T.MobileBertForSequenceClassification,
                       {**factorised, "intra_bottleneck_size": 64, "true_hidden_size": 64}),
        "modernbert": (T.ModernBertConfig, T.ModernBertForSequenceClassification,
                       {"pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102,
                        "cls_token_id": 101, "sep_token_id": 102}),
    }[name]


def build(name: str, vocab: int) -> ClassifierModule:
    """A random classifier of family `name` at SHAPE (seed 0), eval mode."""
    import transformers as T

    torch.manual_seed(0)
    if name == "distilbert":
        config = T.DistilBertConfig(vocab_size=vocab, dim=128, n_layers=4, n_heads=4,
                                    hidden_dim=512, max_position_embeddings=512,
                                    attn_implementation="eager")
        return ClassifierModule(T.DistilBertForSequenceClassification(config)).eval()
    config_cls, model_cls, extra = _classes(name)
    config = config_cls(vocab_size=vocab, attn_implementation="eager", **SHAPE, **extra)
    return ClassifierModule(model_cls(config)).eval()


def measure(module, tokenizer, target: str, scheme: str, out: Path, runs: int) -> dict:
    """Export (parity-gated) and bench one artifact at 1 thread; its size and latency."""
    profile = dataclasses.replace(load_profile(target), threads=1, scheme=scheme)
    result = export(module, parity_sample(tokenizer, SEQ), profile, out / f"{target}-{scheme}")
    timed = bench(result.path, profile, warmup=max(5, runs // 10), runs=runs, seq_len=SEQ,
                  vocab_size=len(tokenizer))
    return {"scheme": scheme, "size_bytes": result.size_bytes, "p50_ms": timed["p50_ms"],
            "p90_ms": timed["p90_ms"], "runtime": timed["runtime"],
            "runtime_version": timed["runtime_version"], "parity_agreement": result.agreement}


def family_rows(name: str, tokenizer, runs: int, out: Path) -> list[dict]:
    """fp32 vs the target's int8 scheme, per target, for one family."""
    module = build(name, len(tokenizer))
    params = sum(p.numel() for p in module.parameters())
    rows = []
    for target in TARGETS:
        int8 = load_profile(target).scheme
        fp32 = measure(module, tokenizer, target, "fp32", out, runs)
        quant = measure(module, tokenizer, target, int8, out, runs)
        rows.append({"family": name, "target": target, "params": params, "fp32": fp32,
                     "int8": quant, "size_ratio": fp32["size_bytes"] / quant["size_bytes"],
                     "speedup": fp32["p50_ms"] / quant["p50_ms"]})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'family':<12}{'target':<13}{'int8 scheme':<14}{'fp32 MB':>8}{'int8 MB':>8}"
          f"{'size x':>7}{'fp32 ms':>9}{'int8 ms':>9}{'speed x':>8}")
    for r in rows:
        print(f"{r['family']:<12}{r['target']:<13}{r['int8']['scheme']:<14}"
              f"{r['fp32']['size_bytes'] / 1e6:>8.2f}{r['int8']['size_bytes'] / 1e6:>8.2f}"
              f"{r['size_ratio']:>7.2f}{r['fp32']['p50_ms']:>9.2f}{r['int8']['p50_ms']:>9.2f}"
              f"{r['speedup']:>8.2f}")


def main() -> None:
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/families.json"))
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_path("minilm-l6")))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families.split(","):
            rows += family_rows(name, tokenizer, args.runs, Path(tmp) / name)
            print(f"{name}: done", flush=True)
    report = {"shape": {**SHAPE, "seq_len": SEQ, "batch": 1, "vocab": len(tokenizer)},
              "threads": 1, "runs": args.runs, "host": host_info(threads=1), "rows": rows}
    atomic_write_json(args.out, report)
    print_table(rows)
    host = report["host"]
    print(f"host: {host.get('cpu_model')} ({host.get('arch')}, {host.get('cores')} cores), "
          f"1 thread; written to {args.out}")


if __name__ == "__main__":
    main()
