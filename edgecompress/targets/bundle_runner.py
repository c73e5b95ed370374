"""Standalone runner of an edgecompress deployment bundle (copied into the bundle as run.py).

Needs only numpy, the `tokenizers` library and the bundle's runtime (onnxruntime, ai-edge-litert
or executorch) — no transformers, no edgecompress; no torch except for ExecuTorch, whose 1.5
Python runtime takes torch tensors.

    python run.py "a gorgeous, witty, seductive movie." "dull"     # predictions as JSON
    python run.py --file sentences.txt                              # one sentence per line
    python run.py --bench --runs 200 --out device.json              # latency on this device
    python run.py --bench --device "Pixel 8" --out device.json      # name the device

`--out` JSON can be added to the run's report with
`edgecompress report RUN_DIR --device-results device.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DTYPES = {"int64": np.int64, "int32": np.int32, "float32": np.float32}


def load_manifest() -> dict:
    return json.loads((HERE / "manifest.json").read_text())


def load_tokenizer(manifest: dict):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(HERE / "tokenizer.json"))
    seq_len, pad_id = manifest["seq_len"], manifest["pad_token_id"]
    tokenizer.enable_truncation(max_length=seq_len)
    if manifest["fixed_shape"]:
        tokenizer.enable_padding(pad_id=pad_id, length=seq_len)
    else:
        tokenizer.enable_padding(pad_id=pad_id)
    return tokenizer


class OnnxSession:
    def __init__(self, manifest: dict, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(HERE / manifest["artifact"]), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = manifest["inputs"]

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {spec["name"]: arr.astype(DTYPES[spec["dtype"]])
                for spec, arr in zip(self.inputs, (ids, mask))}
        return self.session.run(None, feed)[0]


class LiteRtSession:
    """The artifact's signatures by sequence length; each call runs on the shortest signature
    that holds every unmasked token (the columns it drops are padding)."""

    def __init__(self, manifest: dict, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(HERE / manifest["artifact"]), num_threads=threads)
        listed = manifest.get("signatures") or [{"seq_len": manifest["seq_len"],
                                                 "name": manifest["signature"]}]
        self.runners = {s["seq_len"]: interpreter.get_signature_runner(s["name"])
                        for s in sorted(listed, key=lambda s: s["seq_len"])}
        self.inputs, self.output = manifest["inputs"], manifest["outputs"][0]

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        columns = np.flatnonzero(mask.any(axis=0))
        needed = int(columns[-1]) + 1 if columns.size else 1
        seq = next((n for n in self.runners if n >= needed), max(self.runners))
        feed = {spec["name"]: arr[:, :seq].astype(DTYPES[spec["dtype"]])
                for spec, arr in zip(self.inputs, (ids, mask))}
        out = self.runners[seq](**feed)[self.output["name"]]
        scale, zero = self.output.get("scale") or 0.0, self.output.get("zero_point") or 0
        return (out.astype(np.float32) - zero) * scale if scale else out


class ExecuTorchSession:
    """executorch.runtime on the .pte's "forward": `batch` rows of up to `seq_len` tokens."""

    def __init__(self, manifest: dict, threads: int):
        import torch
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        if hasattr(portable_lib, "_unsafe_reset_threadpool"):  # XNNPACK's threadpool
            portable_lib._unsafe_reset_threadpool(threads)
        program = Runtime.get().load_program(str(HERE / manifest["artifact"]))
        self.method, self.torch = program.load_method("forward"), torch

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = [self.torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)) for a in (ids, mask)]
        return self.method.execute(feed)[0].numpy()


SESSIONS = {"onnx": OnnxSession, "tflite": LiteRtSession, "pte": ExecuTorchSession}


def open_session(manifest: dict, threads: int):
    return SESSIONS[manifest["format"]](manifest, threads)


def exact_rows(manifest: dict) -> bool:
    """Whether the artifact takes exactly `batch` rows (fixed shapes, ExecuTorch's dynamic-seq)."""
    return manifest["fixed_shape"] or manifest.get("shape_policy") == "dynamic-seq"


def logits(session, tokenizer, manifest: dict, texts: list[str]) -> np.ndarray:
    """(len(texts), num_labels), as deployed: a fixed-shape artifact runs its own batch of
    padded rows, a dynamic one each text alone at its real length (dynamic int8 quantizes a
    batch's activations together, so batching would change its answers)."""
    step = manifest["batch"] if exact_rows(manifest) else 1
    outputs = []
    for start in range(0, len(texts), step):
        encoded = tokenizer.encode_batch(texts[start:start + step])
        ids = np.array([e.ids for e in encoded])
        mask = np.array([e.attention_mask for e in encoded])
        real = len(ids)
        if exact_rows(manifest) and real < step:  # pad the batch with copies of the last row
            ids = np.concatenate([ids, np.repeat(ids[-1:], step - real, 0)])
            mask = np.concatenate([mask, np.repeat(mask[-1:], step - real, 0)])
        outputs.append(np.asarray(session(ids, mask))[:real])
    return np.concatenate(outputs).astype(np.float32)


def predict(texts: list[str], threads: int) -> list[dict]:
    manifest = load_manifest()
    scores = logits(open_session(manifest, threads), load_tokenizer(manifest), manifest, texts)
    labels = manifest["labels"]
    return [{"text": t, "label": labels[int(s.argmax())], "label_id": int(s.argmax()),
             "logits": [float(v) for v in s]} for t, s in zip(texts, scores)]


def bench(threads: int, runs: int, warmup: int, device: str) -> dict:
    """Latency of one (batch, seq_len) inference on this device, with the bundle's runtime."""
    manifest = load_manifest()
    session = open_session(manifest, threads)
    shape = (manifest["batch"], manifest["seq_len"])
    ids = np.random.default_rng(0).integers(1, manifest["vocab_size"], shape)
    mask = np.ones(shape, dtype=np.int64)
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter_ns()
        session(ids, mask)
        if i >= warmup:
            times.append((time.perf_counter_ns() - start) / 1e6)
    return {"target": manifest["target"], "format": manifest["format"],
            "scheme": manifest["scheme"], "runtime": manifest["runtime"], "threads": threads,
            "batch": shape[0], "seq_len": shape[1], "runs": runs,
            # the same percentile definition as edgecompress bench (numpy's linear), so device
            # rows and host rows of one report compare like for like
            "p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)),
            "size_bytes": (HERE / manifest["artifact"]).stat().st_size,
            "device": device or f"{platform.machine()} {platform.system()}, "
                                f"{os.cpu_count()} CPUs"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an edgecompress bundle.")
    parser.add_argument("texts", nargs="*", help="sentences to classify")
    parser.add_argument("--file", type=Path, help="sentences, one per line")
    parser.add_argument("--bench", action="store_true", help="measure latency instead")
    parser.add_argument("--threads", type=int, default=load_manifest()["threads"])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="", help="device name for the results")
    parser.add_argument("--out", type=Path, help="write the JSON here instead of stdout")
    args = parser.parse_args(argv)
    texts = list(args.texts)
    if args.file:
        texts += [line for line in args.file.read_text().splitlines() if line.strip()]
    if not args.bench and not texts:
        parser.error("give sentences, --file, or --bench")
    result = (bench(args.threads, args.runs, args.warmup, args.device) if args.bench
              else predict(texts, args.threads))
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
