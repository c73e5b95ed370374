"""edgecompress quantization vs the plain tools' own int8 paths: a thin wrapper over anchors.py.

Quantizes the fp32 teacher with `edgecompress quantize` for x86-cpu (ONNX) and arm64-phone
(TFLite), each with its target's default scheme, then runs `benchmarks/anchors.py` with those two
artifact folders, so edgecompress and the baselines are measured in one process, on the same
sentences, interleaved, at 1 thread. The baselines are anchors.py's rows, built as each tool
documents them:
  - ONNX: `onnxruntime.quantization.quantize_dynamic` with its defaults (QInt8 weights, per-tensor)
    on the fp32 torch.onnx export, and ORT's transformer optimizer + per-channel dynamic int8;
  - TFLite: litert-torch's documented dynamic int8, `litert_torch.convert(..., quant_config=
    quant_recipes.full_dynamic_recipe())`. (An earlier version used a PT2E quantizer with
    `is_dynamic=True` at convert time, which left the weights in float, 90.7 MB: not a baseline.)
Latency here is 1 thread for every row, not the targets' thread counts (x86-cpu 2, arm64-phone 4),
so formats compare on equal terms.

    .venv/bin/python benchmarks/quantize_vs_baselines.py [--model DIR] [--limit N] [--repeats 5]

Writes JSON (default benchmarks/results/quantize_vs_baselines.json) and prints anchors.py's table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anchors  # noqa: E402

TEACHER = anchors.cache_dir() / "teachers" / "minilm-l6-rt-polarity"
TARGETS = ("x86-cpu", "arm64-phone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=TEACHER)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/quantize_vs_baselines.json"))
    args = parser.parse_args()
    cli = Path(sys.executable).with_name("edgecompress")
    with tempfile.TemporaryDirectory(prefix="quantize-vs-baselines-") as tmp:
        folders = []
        for target in TARGETS:
            out = Path(tmp) / target
            subprocess.run([str(cli), "quantize", str(args.model), "--target", target,
                            "--out", str(out)], check=True, env={**os.environ})
            folders += ["--artifact-dir", str(out)]
        limit = ["--limit", str(args.limit)] if args.limit else []
        anchors.main(["--teacher", str(args.model), *folders, "--repeats", str(args.repeats),
                      "--runs", str(args.runs), "--out", str(args.out), *limit])


if __name__ == "__main__":
    main()
