"""ONNX Runtime dynamic int8: per_channel x reduce_range, accuracy vs fp32 and latency.

`reduce_range` quantizes weights to 7 bits so that u8 x s8 products cannot saturate the 16-bit
accumulators of AVX2 / AVX-512 (VPMADDUBSW) kernels; CPUs with VNNI or AMX accumulate in 32
bits and do not need it. This measures what it costs and buys on this host, on a tiny random BERT
(hidden 64, 2 layers): logit relative MSE and argmax agreement vs fp32 on `--rows` random inputs,
and latency at batch 1 x `--seq-len`, 1 thread, variants interleaved over `--repeats` rounds
(each round's median, then the median of rounds).

    .venv/bin/python benchmarks/int8_settings.py [--rows 256] [--runs 50] [--repeats 5]

Writes JSON (default benchmarks/results/int8_settings.json) and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgecompress.fsutil import atomic_write_json
from edgecompress.targets.host import host_id, host_info

VOCAB = 1000
SETTINGS = [(False, False), (False, True), (True, False), (True, True)]  # (per_channel, reduce)


class _Logits(torch.nn.Module):
    """HF BertForSequenceClassification -> forward(input_ids, attention_mask) -> (B, C) logits."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids, attention_mask):
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits


def tiny_bert(seed: int, num_labels: int) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=256,
                        max_position_embeddings=512, num_labels=num_labels,
                        attn_implementation="eager")
    return _Logits(BertForSequenceClassification(config).eval()).eval()


def export_fp32(module: torch.nn.Module, path: Path, seq_len: int) -> None:
    ids = torch.ones((1, seq_len), dtype=torch.int64)
    axes = {0: "batch", 1: "seq"}
    with torch.inference_mode():
        torch.onnx.export(module, (ids, torch.ones_like(ids)), str(path), dynamo=False,
                          opset_version=17, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "logits": {0: "batch"}})


def quantize(fp32: Path, out: Path, per_channel: bool, reduce_range: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), per_channel=per_channel, reduce_range=reduce_range,
                     weight_type=QuantType.QInt8)


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def random_inputs(rows: int, seq_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, seq_len) ids in [1, VOCAB) and a mask with random lengths in [8, seq_len]."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(rows, seq_len), dtype=np.int64)
    lengths = rng.integers(8, seq_len + 1, size=rows)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)
    return ids * mask, mask  # padding is id 0, as a tokenizer writes it


def logits(sess, ids: np.ndarray, mask: np.ndarray, chunk: int = 32) -> np.ndarray:
    parts = [sess.run(None, {"input_ids": ids[i:i + chunk], "attention_mask": mask[i:i + chunk]})[0]
             for i in range(0, len(ids), chunk)]
    return np.concatenate(parts)  # (rows, num_labels)


def accuracy(reference: np.ndarray, got: np.ndarray) -> dict:
    err = float(np.mean((got - reference) ** 2) / np.mean(reference ** 2))
    return {"rel_mse": err, "max_abs_diff": float(np.abs(got - reference).max()),
            "agreement": float(np.mean(got.argmax(1) == reference.argmax(1)))}


def latencies(sessions: dict, seq_len: int, runs: int, repeats: int) -> dict[str, list[float]]:
    """Per variant, the median ms of each round; variants interleaved within every round."""
    ids, mask = random_inputs(1, seq_len, seed=1)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(mask)}
    for sess in sessions.values():  # warm up every session before any timing
        for _ in range(5):
            sess.run(None, feed)
    rounds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, sess in sessions.items():
            times = []
            for _ in range(runs):
                start = time.perf_counter_ns()
                sess.run(None, feed)
                times.append((time.perf_counter_ns() - start) / 1e6)
            rounds[name].append(statistics.median(times))
    return rounds


def _name(per_channel: bool, reduce_range: bool) -> str:
    return f"int8 per_channel={per_channel} reduce_range={reduce_range}"


def measure(args) -> dict:
    import onnxruntime as ort

    module = tiny_bert(args.seed, args.labels)
    ids, mask = random_inputs(args.rows, args.seq_len, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(module, fp32, args.seq_len)
        paths = {"fp32": fp32}
        for per_channel, reduce_range in SETTINGS:
            path = Path(tmp) / f"int8-pc{per_channel:d}-rr{reduce_range:d}.onnx"
            quantize(fp32, path, per_channel, reduce_range)
            paths[_name(per_channel, reduce_range)] = path
        sessions = {name: session(path) for name, path in paths.items()}
        reference = logits(sessions["fp32"], ids, mask)
        with torch.inference_mode():  # the ONNX fp32 must be the torch model
            torch_ref = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        rounds = latencies(sessions, args.seq_len, args.runs, args.repeats)
        rows = []
        for name, sess in sessions.items():
            row = {"variant": name, "size_bytes": paths[name].stat().st_size,
                   **accuracy(reference, logits(sess, ids, mask)),
                   "p50_ms": statistics.median(rounds[name]), "round_p50_ms": rounds[name]}
            rows.append(row)
    info = host_info(threads=1)
    return {"model": "random BertForSequenceClassification, hidden 64, 2 layers, 4 heads, "
                     f"FFN 256, vocab {VOCAB}, {args.labels} labels, seed {args.seed}",
            "rows": args.rows, "seq_len": args.seq_len, "batch_latency": 1, "threads": 1,
            "runs": args.runs, "repeats": args.repeats, "onnxruntime": ort.__version__,
            "torch_vs_onnx_fp32_max_abs_diff": float(np.abs(torch_ref - reference).max()),
            "fp32_logit_std": float(reference.std()), "host": info, "host_id": host_id(info),
            "results": rows}


def print_table(report: dict) -> None:
    print(f"host: {report['host']['cpu_model']} ({report['host']['arch']}; "
          f"int8 ISA: {', '.join(report['host']['isa']) or 'none'}); onnxruntime "
          f"{report['onnxruntime']}; fp32 logit std {report['fp32_logit_std']:.3g}")
    print(f"{'variant':<42}{'rel MSE':>10}{'agree':>8}{'p50 ms':>9}{'x fp32':>8}{'KB':>8}")
    base = report["results"][0]["p50_ms"]
    for row in report["results"]:
        print(f"{row['variant']:<42}{row['rel_mse']:>10.2e}{row['agreement']:>8.3f}"
              f"{row['p50_ms']:>9.3f}{base / row['p50_ms']:>8.2f}{row['size_bytes'] / 1e3:>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--labels", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/int8_settings.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = measure(args)
    atomic_write_json(args.out, report)
    print_table(report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
