"""Anchors: the plain tools' own int8/fp32 paths on the same fp32 teacher, measured together.

Every row is built the way that tool's docs recommend, from one fine-tuned HF checkpoint, and
measured in one process on one host: 1 thread everywhere; accuracy as deployed, through the same
function as `edgecompress eval` and a run's eval stage (compress/evaluation/evaluate.py
`evaluate_split`: one sentence at a time at its real length, truncated at 128 tokens, for dynamic
shapes; a fixed-shape TFLite file at its signature), so an edgecompress artifact's row has the
accuracy its eval.json has; latency at batch 1 x seq 128, interleaved across rows
(A B C ... A B C ...).

Rows: torch fp32 (the teacher, reference for deltas and agreement); ONNX fp32 (torch.onnx legacy
exporter, opset 17); `onnxruntime.quantization.quantize_dynamic` defaults (QInt8 per-tensor);
ORT transformer optimizer (`optimize_model(model_type="bert", num_heads=12, hidden_size=384)`, what
Optimum -O2 runs) fp32 and + `quantize_dynamic(per_channel=True)`; litert-torch fp32 and its
documented dynamic int8 (`quant_recipes.full_dynamic_recipe()`); ExecuTorch + XNNPACK fp32 and
int8 (XNNPACKQuantizer symmetric per-channel dynamic; both lowered by edgecompress's own
targets/pte.py, the android-xnnpack target's path), skipped with a one-line reason when
`executorch` is not installed; OpenVINO fp32 and NNCF int8 (`nncf.quantize`,
`model_type=TRANSFORMER`, 300 length-stratified training sentences) of the teacher, and NNCF int8
of the run's fp32 student (the x86-openvino target's path, an edgecompress row), all through
edgecompress's targets/openvino_backend.py with OpenVINO's default inference precision for the CPU
(recorded per row), skipped with a reason when `openvino` / `nncf` are not installed; the best
edgecompress artifact per format of `--run-dir` (by its eval.json accuracy, then size) and any
`--artifact-dir` (e.g. from `edgecompress quantize`).

Latency twice: at batch 1 x seq 128 (`p50_ms`, the headline: the same input for every row) and
over 200 test sentences at their real length (`p50_real_ms`: most RT sentences are ~27 tokens;
ONNX, torch and ExecuTorch (edgecompress's dynamic-seq lowering) run them unpadded, the
fixed-shape TFLite artifacts padded to 128 — an edgecompress TFLite file with length signatures
then runs each on the shortest signature that holds it; the row's `real_shape` says which).

    /work/anchors-venv/bin/python benchmarks/anchors.py --teacher DIR [--run-dir RUN] \
        [--artifact-dir DIR ...] [--repeats 5] [--runs 50] [--limit N] [--work DIR] \
        [--out benchmarks/results/anchors.json]

Writes JSON and prints a table. ExecuTorch lives in the optional extra `executorch`, OpenVINO and
NNCF in `openvino` (both in `anchors`: `pip install -e '.[anchors]'`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")

import numpy as np  # noqa: E402

from edgecompress.stats import paired_delta, wilson_interval  # noqa: E402

SEQ = 128
THREADS = 1
PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "onnx", "onnxruntime", "litert-torch",
            "ai-edge-litert", "executorch", "torchao", "openvino", "nncf", "edgecompress")


# ---------------------------------------------------------------- data and teacher


def cache_dir() -> Path:
    return Path(os.environ.get("EDGECOMPRESS_CACHE", Path.home() / ".cache" / "edgecompress"))


def load_test_split(limit: int | None) -> tuple[list[str], np.ndarray, str]:
    """rt-polarity test split (texts, labels, source file), fetched with the edgecompress CLI."""
    files = sorted((cache_dir() / "datasets").glob("rt-polarity-*.json"))
    if not files:
        cli = Path(sys.executable).with_name("edgecompress")
        subprocess.run([str(cli), "data", "fetch", "rt-polarity"], check=True)
        files = sorted((cache_dir() / "datasets").glob("rt-polarity-*.json"))
    data = json.loads(files[-1].read_text())
    test = data["splits"]["test"]
    texts, labels = list(test["texts"]), np.asarray(test["labels"], dtype=np.int64)
    if limit:
        texts, labels = texts[:limit], labels[:limit]
    return texts, labels, str(files[-1])


def load_teacher(path: Path):
    """(logits module forward(input_ids, attention_mask) -> (B, C), tokenizer, config).
    Eager attention: an explicit additive mask, the graph the ORT BERT fusions match
    (edgecompress loads its models the same way)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf = AutoModelForSequenceClassification.from_pretrained(
        path, attn_implementation="eager", local_files_only=True).eval()

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return Logits(hf).eval(), AutoTokenizer.from_pretrained(path, local_files_only=True), hf.config


def fingerprint(path: Path) -> str:
    """sha256 (12 hex) of the checkpoint's weight and config files: keys reusable artifacts."""
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) + [
            path / "config.json"]:
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def tokenize(tokenizer, texts: list[str], seq: int = SEQ) -> tuple[np.ndarray, np.ndarray]:
    """(N, seq) int64 ids and mask: truncate to seq and pad to seq, the same for every row."""
    enc = tokenizer(texts, truncation=True, max_length=seq, padding="max_length",
                    return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


# ---------------------------------------------------------------- rows


@dataclass
class Row:
    tool: str
    format: str
    scheme: str
    path: Path | None = None
    runner: object | None = None  # edgecompress.targets.Runner: run(ids, mask) -> (B, C)
    inputs: tuple | None = None  # (ids, mask) for this row when its tokenizer differs
    skipped: str | None = None
    notes: dict = field(default_factory=dict)
    build_s: float = 0.0
    edgecompress: bool = False
    tokenizer: object | None = None  # this row's own (an edgecompress artifact's); None: teacher's

    @property
    def run(self) -> Callable | None:
        """(ids (1, S), mask (1, S)) -> (1, C) float32, or None for a skipped row."""
        return self.runner.run if self.runner is not None else None


def _time_build(row_fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        row = row_fn(*args, **kwargs)
        row.build_s = round(time.perf_counter() - start, 1)
        print(f"[anchors] built {row.tool} {row.scheme} in {row.build_s:.0f} s", file=sys.stderr,
              flush=True)
        return row
    wrapper.__name__ = row_fn.__name__
    return wrapper


def _runner(path: Path):
    from edgecompress.targets import load_runner

    return load_runner(path, threads=THREADS)


def _guard(tool: str, fmt: str, scheme: str, build: Callable[[], Row]) -> Row:
    """Build one row; a failure becomes a skipped row with a one-line reason, not a crash."""
    try:
        return build()
    except Exception as err:  # each tool raises its own types; the table says which and why
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:240]
        print(f"[anchors] {tool} {scheme}: FAILED: {reason}", file=sys.stderr)
        return Row(tool, fmt, scheme, skipped=f"failed: {reason}")


@_time_build
def torch_row(module) -> Row:
    from edgecompress.targets import torch_runner

    return Row("torch (teacher)", "torch", "fp32", runner=torch_runner(module))


@_time_build
def onnx_fp32_row(module, sample, work: Path) -> Row:
    """torch.onnx legacy exporter (one file, the graph the ORT optimizer and Optimum use)."""
    import torch

    path = work / "onnx_fp32.onnx"
    if not path.exists():
        axes = {0: "batch", 1: "seq"}
        torch.onnx.export(module, tuple(torch.from_numpy(a) for a in sample), str(path),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return Row("torch.onnx + onnxruntime", "onnx", "fp32 (opset 17)", path, _runner(path))


@_time_build
def ort_dynamic_row(fp32: Path, work: Path) -> Row:
    from onnxruntime.quantization import quantize_dynamic

    path = work / "ort_quantize_dynamic.onnx"
    if not path.exists():
        quantize_dynamic(str(fp32), str(path))  # defaults: QInt8 weights, per-tensor
    return Row("onnxruntime quantize_dynamic", "onnx", "dynamic int8 (defaults, per-tensor)",
               path, _runner(path))


@_time_build
def ort_optimizer_row(fp32: Path, work: Path, config) -> Row:
    from onnxruntime.transformers.optimizer import optimize_model

    path = work / "ort_optimizer_fp32.onnx"
    fused = {}
    if not path.exists():
        optimized = optimize_model(str(fp32), model_type="bert",
                                   num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(path))
    return Row("ORT transformer optimizer", "onnx", "fp32 fused", path, _runner(path),
               notes={"fused_ops": fused})


@_time_build
def ort_optimizer_int8_row(optimized: Path, work: Path) -> Row:
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    path = work / "ort_optimizer_int8_per_channel.onnx"
    if not path.exists():
        # The fused graph has ops (Attention, SkipLayerNorm) without shape inference results;
        # quantize_dynamic then needs a default tensor type to proceed.
        quantize_dynamic(str(optimized), str(path), per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return Row("ORT optimizer + quantize_dynamic", "onnx", "dynamic int8 per-channel (fused)",
               path, _runner(path))


def _litert_convert(module, sample, path: Path, quant_config=None) -> None:
    import litert_torch
    import torch

    args = tuple(torch.from_numpy(a[:1]) for a in sample)  # static (1, 128)
    kwargs = {"quant_config": quant_config} if quant_config is not None else {}
    litert_torch.convert(module.eval(), args, **kwargs).export(str(path))


@_time_build
def litert_fp32_row(module, sample, work: Path) -> Row:
    path = work / "litert_fp32.tflite"
    if not path.exists():
        _litert_convert(module, sample, path)
    return Row("litert-torch", "tflite", "fp32", path, _runner(path))


@_time_build
def litert_int8_row(module, sample, work: Path) -> Row:
    from litert_torch.generative.quantize import quant_recipes

    path = work / "litert_full_dynamic_recipe.tflite"
    if not path.exists():
        _litert_convert(module, sample, path, quant_recipes.full_dynamic_recipe())
    return Row("litert-torch", "tflite", "dynamic int8 (full_dynamic_recipe)", path, _runner(path))


def executorch_missing() -> str | None:
    from edgecompress.targets.extras import enable_hint

    hint = enable_hint("pte")
    return f"skipped: executorch not installed; {hint}" if hint else None


def _et_lower(module, sample, path: Path, scheme: str) -> dict | None:
    """The package's android-xnnpack lowering (targets/pte.py): batch 1, sequence up to SEQ."""
    import dataclasses

    from edgecompress.targets import load_profile
    from edgecompress.targets.pte import lower

    profile = dataclasses.replace(load_profile("android-xnnpack"), threads=THREADS, seq_len=SEQ)
    arrays = {"input_ids": sample[0][:1], "attention_mask": sample[1][:1]}
    return lower(module, arrays, profile, path, profile.scheme_for(scheme))[2]


def _et_row(scheme: str, label: str, path: Path, notes: dict) -> Row:
    from edgecompress.targets import load_runner

    runner = load_runner(path, threads=THREADS)
    threads = runner.backend.threads
    notes["threads"] = (f"threadpool {threads} thread(s) (_unsafe_reset_threadpool)"
                        if threads else "threadpool not settable; runtime default threads")
    return Row("ExecuTorch + XNNPACK", "pte", label, path, runner, notes=notes)


@_time_build
def executorch_fp32_row(module, sample, work: Path) -> Row:
    path = work / "executorch_xnnpack_fp32.pte"
    if not path.exists():
        _et_lower(module, sample, path, "fp32")
    return _et_row("fp32", "fp32", path, {})


@_time_build
def executorch_int8_row(module, sample, work: Path) -> Row:
    """XNNPACKQuantizer symmetric per-channel dynamic int8 (the ExecuTorch XNNPACK tutorial)."""
    path = work / "executorch_xnnpack_int8_dynamic.pte"
    notes = {}
    if not path.exists():
        facts = _et_lower(module, sample, path, "dynamic-int8")
        notes["int_constants_restored"] = facts["int_constants_restored"]
    return _et_row("dynamic-int8", "dynamic int8 per-channel (XNNPACKQuantizer)", path, notes)


# ---------------------------------------------------------------- OpenVINO + NNCF rows

OPENVINO_CALIBRATION = 300  # training sentences NNCF calibrates on (the x86-openvino profile's)


def openvino_missing() -> str | None:
    from edgecompress.targets.extras import enable_hint

    hint = enable_hint("openvino")
    return f"skipped: openvino / nncf not installed; {hint}" if hint else None


def run_student(run_dir: Path | None) -> Path | None:
    """The fp32 checkpoint a run exported its artifacts from (their manifests' `source`)."""
    for manifest_path in sorted((run_dir / "artifacts").glob("*/manifest.json")) if run_dir else []:
        source = Path(json.loads(manifest_path.read_text()).get("source") or "")
        if (source / "config.json").is_file():
            return source
    return None


def calibration_rows(tokenizer, n: int = OPENVINO_CALIBRATION) -> list[dict]:
    """The run's calibration draw: `n` training sentences keeping the length distribution (seed
    0, at most SEQ tokens; compress/quantize/calibration.py, what every target calibrates on),
    one-row feeds in `tokenizer`'s ids."""
    from types import SimpleNamespace

    from edgecompress.compress.quantize.calibration import calibration_set

    data = json.loads(sorted((cache_dir() / "datasets").glob("rt-polarity-*.json"))[-1]
                      .read_text())
    train = SimpleNamespace(texts=data["splits"]["train"]["texts"])
    return calibration_set(train, tokenizer, n, SEQ, seed=0).rows()


def _openvino_ir(module, rows: list[dict], path: Path, *, int8: bool,
                 hint: str | None = None) -> dict:
    """The x86-openvino target's own path (targets/openvino_backend.py): openvino.convert_model
    from torch, fp32 IR, then (int8) nncf.quantize(model_type=TRANSFORMER) on `rows`. `hint`:
    the inference precision written into the IR; None leaves OpenVINO's default for this CPU
    (bf16 on AVX512-BF16), what a user of the tool gets. Either way the row records it."""
    import dataclasses

    from edgecompress.targets import load_profile
    from edgecompress.targets.openvino_backend import convert, quantize_nncf

    profile = dataclasses.replace(load_profile("x86-openvino"), inference_precision=hint)
    fp32 = path.with_name(path.stem + ".fp32.xml") if int8 else path
    if not fp32.exists():
        convert(module, rows[0], profile, fp32)
    if int8 and not path.exists():
        return quantize_nncf(fp32, path, rows, ())
    return {}


def _openvino_row(tool: str, scheme: str, path: Path, notes: dict, inputs=None,
                  tokenizer=None) -> Row:
    """A row over an IR, run by the package's OpenVINO runner at THREADS threads; size and the
    precision OpenVINO runs in go to the notes (an IR is .xml + .bin: `score` sizes one file)."""
    from edgecompress.targets import load_runner
    from edgecompress.targets.runtime_util import artifact_bytes, artifact_files

    runner = load_runner(path, threads=THREADS)
    notes = {**notes, **runner.backend.options, "artifact": str(path),
             "size_mb": artifact_bytes(path) / 1e6,
             "gzip_mb": sum(gzip_mb(p) for p in artifact_files(path))}
    return Row(tool, "openvino", scheme, None, runner, inputs=inputs, notes=notes,
               tokenizer=tokenizer)


@_time_build
def openvino_fp32_row(module, rows: list[dict], work: Path) -> Row:
    path = work / "openvino_fp32.xml"
    _openvino_ir(module, rows, path, int8=False)
    return _openvino_row("OpenVINO", "fp32 (openvino.convert_model)", path, {})


@_time_build
def openvino_int8_row(module, rows: list[dict], work: Path, *, name: str = "teacher",
                      tool: str = "OpenVINO + NNCF", inputs=None, hint: str | None = None,
                      tokenizer=None) -> Row:
    path = work / f"openvino_nncf_int8_{name}-{hint or 'default'}.xml"
    facts = _openvino_ir(module, rows, path, int8=True, hint=hint)
    notes = {"calibration": f"{len(rows)} training sentences (seed 0, length-stratified)"}
    if facts:  # freshly quantized (a reused IR keeps no record); `tool` is the row's own key
        notes.update(quantizer=facts["tool"], quantizer_version=facts["tool_version"])
    return _openvino_row(tool, "int8 (nncf.quantize, model_type=TRANSFORMER)", path, notes,
                         inputs, tokenizer)


def openvino_rows(module, tokenizer, work: Path, run_dir: Path | None, texts) -> list[Row]:
    """OpenVINO fp32 and NNCF int8 of the teacher (anchors, OpenVINO's default precision), and
    NNCF int8 of the run's fp32 student as the x86-openvino target makes it (its precision hint;
    an edgecompress row) — on the same calibration sentences, each tokenized with its own
    tokenizer; skipped rows say why."""
    from edgecompress.targets import load_profile

    missing = openvino_missing()
    if missing:
        return [Row("OpenVINO", "openvino", s, skipped=missing) for s in ("fp32", "int8")]
    rows = calibration_rows(tokenizer)
    out = [_guard("openvino", "openvino", "fp32", lambda: openvino_fp32_row(module, rows, work)),
           _guard("openvino", "openvino", "int8", lambda: openvino_int8_row(module, rows, work))]
    student = run_student(run_dir)
    if student is None:
        return out
    student_module, student_tokenizer, _ = load_teacher(student)
    build = lambda: openvino_int8_row(  # noqa: E731
        student_module, calibration_rows(student_tokenizer), work,
        name=f"student-{fingerprint(student)}",
        tool="edgecompress student + OpenVINO + NNCF",
        inputs=tokenize(student_tokenizer, texts), tokenizer=student_tokenizer,
        hint=load_profile("x86-openvino").inference_precision)
    student_row = _guard("openvino", "openvino", "int8 (student)", build)
    student_row.edgecompress = True  # our pruned, distilled student: not an anchor
    student_row.notes["source"] = str(student)
    return out + [student_row]


def best_run_artifacts(run_dir: Path) -> list[Path]:
    """Artifact folders of an edgecompress run, the best per format: highest accuracy in its
    eval.json, then the smallest file."""
    best: dict[str, tuple] = {}
    for manifest_path in sorted((run_dir / "artifacts").glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        eval_path = manifest_path.with_name("eval.json")
        artifact = manifest_path.parent / manifest["artifact"]
        if not eval_path.exists() or not artifact.exists():
            continue
        key = (-json.loads(eval_path.read_text())["accuracy"], artifact.stat().st_size)
        if manifest["format"] not in best or key < best[manifest["format"]][0]:
            best[manifest["format"]] = (key, manifest_path.parent)
    return [folder for _, (_, folder) in sorted(best.items())]


@_time_build
def edgecompress_row(folder: Path, texts: list[str]) -> Row:
    """One edgecompress artifact folder (manifest.json naming the file, its tokenizer beside it:
    vocabulary pruning remaps ids), opened the way `edgecompress eval` opens it (its labels
    checked against the model's outputs); latency inputs tokenized with its tokenizer."""
    from edgecompress.compress.evaluation.artifacts import open_evaluable

    manifest = json.loads((folder / "manifest.json").read_text())
    artifact = folder / manifest["artifact"]
    model = open_evaluable(artifact, threads=THREADS)
    eval_path = folder / "eval.json"
    notes = {"target": manifest.get("target"), "target_threads": manifest.get("threads"),
             "source": manifest.get("source")}
    if eval_path.exists():
        notes["run_dir_eval_accuracy"] = json.loads(eval_path.read_text())["accuracy"]
    return Row(f"edgecompress ({manifest.get('target')})", manifest["format"], manifest["scheme"],
               artifact, model.runner, inputs=tokenize(model.tokenizer, texts),
               edgecompress=True, notes=notes, tokenizer=model.tokenizer)


def build_rows(module, config, sample, work: Path, ours: list[Path], texts) -> list[Row]:
    """Every row, in table order; a failed or unavailable tool is a skipped row."""
    import torch

    torch.set_num_threads(THREADS)
    rows = [torch_row(module)]
    rows.append(_guard("onnx", "onnx", "fp32", lambda: onnx_fp32_row(module, sample, work)))
    fp32 = work / "onnx_fp32.onnx"
    rows.append(_guard("ort", "onnx", "dynamic int8", lambda: ort_dynamic_row(fp32, work)))
    rows.append(_guard("ort optimizer", "onnx", "fp32 fused",
                       lambda: ort_optimizer_row(fp32, work, config)))
    rows.append(_guard("ort optimizer", "onnx", "int8 per-channel",
                       lambda: ort_optimizer_int8_row(work / "ort_optimizer_fp32.onnx", work)))
    rows.append(_guard("litert-torch", "tflite", "fp32",
                       lambda: litert_fp32_row(module, sample, work)))
    rows.append(_guard("litert-torch", "tflite", "full_dynamic_recipe",
                       lambda: litert_int8_row(module, sample, work)))
    missing = executorch_missing()
    if missing:
        for scheme in ("fp32", "dynamic int8 per-channel (XNNPACKQuantizer)"):
            rows.append(Row("ExecuTorch + XNNPACK", "pte", scheme, skipped=missing))
    else:
        rows.append(_guard("executorch", "pte", "fp32",
                           lambda: executorch_fp32_row(module, sample, work)))
        rows.append(_guard("executorch", "pte", "int8",
                           lambda: executorch_int8_row(module, sample, work)))
    for folder in ours:
        rows.append(_guard("edgecompress", "?", str(folder),
                           lambda folder=folder: edgecompress_row(folder, texts)))
    return rows


# ---------------------------------------------------------------- measurement


def row_evaluation(row: Row, tokenizer, texts: list[str], labels: np.ndarray,
                   reference_pred: np.ndarray | None = None):
    """A row's accuracy on (texts, labels), through edgecompress's one evaluation path
    (`evaluate_split`, as deployed, truncated at SEQ tokens) with the row's own tokenizer or
    `tokenizer` (the teacher's). Returns its SplitEvaluation (outputs, pred, record)."""
    from edgecompress.compress.data.datasets import Split
    from edgecompress.compress.evaluation.evaluate import evaluate_split

    split = Split(tuple(texts), tuple(int(y) for y in labels))
    return evaluate_split(row.runner, row.tokenizer or tokenizer, split, (), max_length=SEQ,
                          reference_pred=reference_pred)


def latency(rows: list[Row], sample, repeats: int, runs: int, warmup: int) -> dict[int, dict]:
    """Interleaved rounds: each round times every live row `runs` times after `warmup` calls.
    p50 / p90 = median over rounds of each round's median / 90th percentile. Every position of
    the 128 is attended (mask all ones): a runtime that skips masked padding (edgecompress's
    TFLite length signatures) must still run 128 tokens here, like every other row."""
    live = [i for i, r in enumerate(rows) if r.run is not None]
    per_round: dict[int, list[tuple[float, float]]] = {i: [] for i in live}
    for _ in range(repeats):
        for i in live:
            row = rows[i]
            ids, mask = (row.inputs[0][:1], row.inputs[1][:1]) if row.inputs else sample
            mask = np.ones_like(mask)
            for _ in range(warmup):
                row.run(ids, mask)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                row.run(ids, mask)
                times.append((time.perf_counter() - start) * 1e3)
            per_round[i].append((float(np.median(times)), float(np.percentile(times, 90))))
    return {i: {"p50_ms": statistics.median(r[0] for r in rounds),
                "p90_ms": statistics.median(r[1] for r in rounds),
                "p50_ms_rounds": [round(r[0], 3) for r in rounds]}
            for i, rounds in per_round.items()}


REAL_SAMPLE = 200  # test sentences timed at their own length, the same ones for every row
FIXED_FORMATS = ("tflite",)  # exported at 1 x 128: every sentence pays for 128 tokens (the
# ExecuTorch rows take any length up to 128: targets/pte.py's dynamic-seq lowering)


def real_length_latency(rows: list[Row], ids, mask, repeats: int) -> dict[int, dict]:
    """Batch-1 latency over a seeded sample of test sentences at their real token counts.

    Dynamic-shape rows (torch, ONNX, ExecuTorch up to 128) run each sentence unpadded;
    fixed-shape rows (TFLite, built at seq 128) get it padded to 128, as a deployment must; the
    edgecompress runner then runs a TFLite file with length signatures on the shortest one.
    Interleaved
    like `latency`: each round runs every row over the whole sample. p50 / mean over all calls
    of the median round (by mean)."""
    order = np.random.default_rng(0).permutation(len(ids))[:REAL_SAMPLE]
    live = [i for i, r in enumerate(rows) if r.run is not None]
    rounds: dict[int, list[list[float]]] = {i: [] for i in live}
    for _ in range(repeats):
        for i in live:
            row = rows[i]
            row_ids, row_mask = row.inputs if row.inputs else (ids, mask)
            times = []
            for k in order:
                length = SEQ if row.format in FIXED_FORMATS else max(2, int(row_mask[k].sum()))
                a, b = row_ids[k:k + 1, :length], row_mask[k:k + 1, :length]
                start = time.perf_counter()
                row.run(a, b)
                times.append((time.perf_counter() - start) * 1e3)
            rounds[i].append(times)
    out = {}
    for i, per in rounds.items():
        median_round = sorted(per, key=np.mean)[len(per) // 2]
        out[i] = {"p50_real_ms": float(np.median(median_round)),
                  "mean_real_ms": float(np.mean(median_round)),
                  "real_shape": _real_shape(rows[i])}
    return out


def _real_shape(row: Row) -> str:
    """How a sentence reaches the artifact: unpadded (dynamic), on the shortest of several
    length signatures (edgecompress TFLite with buckets), or padded to 128."""
    if row.format not in FIXED_FORMATS:
        return "unpadded"
    if row.path is not None and row.path.suffix == ".tflite":
        from edgecompress.targets import load_runner

        buckets = load_runner(row.path).buckets
        if len(buckets) > 1:
            return "signatures " + "/".join(map(str, buckets))
    return "padded to 128"


def gzip_mb(path: Path) -> float:
    class Counter:
        size = 0

        def write(self, data):
            self.size += len(data)
            return len(data)

        def flush(self):
            pass

    counter = Counter()
    with open(path, "rb") as src, gzip.GzipFile(fileobj=counter, mode="wb", mtime=0) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return counter.size / 1e6


def host() -> dict:
    """CPU model, ISA flags that decide int8 kernels, cores, load, package versions."""
    from importlib.metadata import PackageNotFoundError, version

    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model.strip():
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    isa = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
           "amx_bf16")
    return {"cpu": model, "machine": platform.machine(), "isa": {f: f in flags for f in isa},
            "cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "loadavg_start": list(os.getloadavg()), "python": platform.python_version(),
            "packages": versions}


# ---------------------------------------------------------------- results


def score(rows: list[Row], lat: dict, tokenizer, texts: list[str], labels) -> list[dict]:
    """Per-row accuracy (as deployed: row_evaluation), paired delta vs the torch teacher (row 0),
    agreement, sizes, ratios."""
    teacher = row_evaluation(rows[0], tokenizer, texts, labels)
    teacher_logits, teacher_pred = teacher.outputs, teacher.pred
    out = []
    for i, row in enumerate(rows):
        rec = {"tool": row.tool, "format": row.format, "scheme": row.scheme,
               "edgecompress": row.edgecompress, "artifact": str(row.path) if row.path else None,
               "build_s": row.build_s, **row.notes}
        if row.skipped:
            out.append({**rec, "skipped": row.skipped})
            continue
        start = time.perf_counter()
        evaluation = teacher if i == 0 else row_evaluation(row, tokenizer, texts, labels)
        logits, pred = evaluation.outputs, evaluation.pred
        ok = pred == labels
        delta = paired_delta(labels, pred, teacher_pred)
        agree = int(np.sum(pred == teacher_pred))
        rec.update({
            "n": int(len(labels)), "correct": int(ok.sum()),
            "accuracy": evaluation.record["accuracy"],
            "accuracy_ci95": list(wilson_interval(int(ok.sum()), len(labels))),
            "evaluated_as": evaluation.record["evaluated_as"],
            "truncated": evaluation.record.get("truncated"),
            "delta_vs_teacher_points": round(delta.delta, 3),
            "delta_ci95_points": [round(delta.ci95[0], 3), round(delta.ci95[1], 3)],
            "delta_p_value": delta.p_value,
            "delta_method": "edgecompress.stats.paired_delta (Newcombe method 10, McNemar exact)",
            "agreement": agree / len(labels),
            "agreement_ci95": list(wilson_interval(agree, len(labels))),
            "max_abs_logit_diff_vs_teacher": (None if row.inputs is not None else
                                              float(np.max(np.abs(logits - teacher_logits)))),
            "eval_s": round(time.perf_counter() - start, 1),
            **lat[i]})
        print(f"[anchors] evaluated {row.tool} {row.scheme}: {100 * ok.mean():.2f} % in "
              f"{rec['eval_s']:.0f} s", file=sys.stderr, flush=True)
        if row.path:
            rec.update({"size_mb": row.path.stat().st_size / 1e6, "gzip_mb": gzip_mb(row.path)})
        out.append(rec)
    _ratios(out)
    return out


def _ratios(out: list[dict]) -> None:
    """p50 and size ratios vs ONNX fp32 and vs the best anchor: the fastest non-edgecompress
    artifact whose accuracy is at most 1 point below the teacher's."""
    onnx = next((r for r in out if r["format"] == "onnx" and r["scheme"].startswith("fp32 (")
                 and "p50_ms" in r), None)
    anchors = [r for r in out if not r["edgecompress"] and r["format"] != "torch"
               and "p50_ms" in r and r["delta_vs_teacher_points"] >= -1.0]
    best = min(anchors, key=lambda r: r["p50_ms"]) if anchors else None
    for r in out:
        if "p50_ms" not in r:
            continue
        for name, ref in (("onnx_fp32", onnx), ("best_anchor", best)):
            r[f"p50_ratio_vs_{name}"] = r["p50_ms"] / ref["p50_ms"] if ref else None
            r[f"size_ratio_vs_{name}"] = (r["size_mb"] / ref["size_mb"]
                                          if ref and "size_mb" in r else None)
        r["is_best_anchor"] = r is best


def print_table(result: dict) -> None:
    rows = result["rows"]
    head = ["tool", "fmt", "scheme", "MB", "gz MB", "acc % [95% CI]", "Δ pts [95% CI]", "agree %",
            "p50 ms", "p90 ms", "p50 real", "p50/onnx", "MB/onnx", "p50/best"]
    lines = []
    for r in rows:
        if "skipped" in r:
            lines.append([r["tool"], r["format"], r["scheme"], r["skipped"]] + [""] * 10)
            continue
        f = lambda v, p=2: "" if v is None else f"{v:.{p}f}"  # noqa: E731
        lo, hi = r["accuracy_ci95"]
        dlo, dhi = r["delta_ci95_points"]
        best = " *" if r.get("is_best_anchor") else ""
        lines.append([r["tool"], r["format"], r["scheme"], f(r.get("size_mb")), f(r.get("gzip_mb")),
                      f"{100 * r['accuracy']:.2f} [{100 * lo:.1f}, {100 * hi:.1f}]",
                      f"{r['delta_vs_teacher_points']:+.2f} [{dlo:+.2f}, {dhi:+.2f}]",
                      f"{100 * r['agreement']:.2f}", f(r["p50_ms"]), f(r["p90_ms"]),
                      f(r.get("p50_real_ms")),
                      f(r.get("p50_ratio_vs_onnx_fp32")), f(r.get("size_ratio_vs_onnx_fp32")),
                      f(r.get("p50_ratio_vs_best_anchor")) + best])
    h = result["host"]
    title = (f"anchors: {result['n']} rt-polarity test sentences, b1 x s{SEQ}, {THREADS} thread, "
             f"{result['repeats']} interleaved rounds x {result['runs']} runs; {h['cpu']}")
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=title, caption="* best anchor: fastest non-edgecompress artifact "
                      f"within 1 point of the teacher. p50 real: {REAL_SAMPLE} test sentences at "
                      "their own length (TFLite / ExecuTorch padded to 128: fixed shape)")
        for name in head:
            table.add_column(name, overflow="fold")
        for line in lines:
            table.add_row(*map(escape, line))  # "[anchors]" and CIs are text, not markup
        Console(width=220).print(table)
    except ImportError:
        print(title)
        print(" | ".join(head))
        for line in lines:
            print(" | ".join(line))


def markdown_table(result: dict) -> str:
    """The README's table of a result: one line per row, ratios vs ONNX fp32 and the best anchor."""
    lines = ["| tool | format | scheme | MB | accuracy [95 % CI] "
             "| Δ vs teacher, points [paired CI] "
             "| p50 ms (s128) | p50 ms (real lengths) | × faster than ONNX fp32 | × smaller |",
             "|---|---|---|---:|---|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['tool']} | {r['format']} | {r['scheme']} | skipped: "
                         f"{r['skipped']} | | | | | | |")
            continue
        lo, hi = r["accuracy_ci95"]
        dlo, dhi = r["delta_ci95_points"]
        speed = r.get("p50_ratio_vs_onnx_fp32")
        size = r.get("size_ratio_vs_onnx_fp32")
        lines.append(" | ".join([
            f"| {r['tool']}" + (" (best anchor)" if r.get("is_best_anchor") else ""),
            r["format"], r["scheme"], f"{r['size_mb']:.2f}" if "size_mb" in r else "—",
            f"{100 * r['accuracy']:.2f} % [{100 * lo:.1f}, {100 * hi:.1f}]",
            f"{r['delta_vs_teacher_points']:+.2f} [{dlo:+.2f}, {dhi:+.2f}]",
            f"{r['p50_ms']:.2f}",
            f"{r['p50_real_ms']:.2f}" if r.get("p50_real_ms") is not None else "—",
            f"{1 / speed:.1f}" if speed else "—", f"{1 / size:.1f} |" if size else "— |"]))
    return "\n".join(lines)


def without_local_paths(text: str, args) -> str:
    """The JSON with this machine's folders named by role (TEACHER, RUN, WORK, CACHE, the
    interpreter as python): committed results carry no absolute path of the host."""
    from edgecompress.fsutil import cache_root

    roles = [(args.teacher, "TEACHER"), (args.run_dir, "RUN"), (args.work, "WORK"),
             (cache_root(), "CACHE"), (Path(sys.executable), "python")]
    for path, role in sorted(((p, r) for p, r in roles if p), key=lambda pr: -len(str(pr[0]))):
        text = text.replace(json.dumps(str(Path(path).resolve()))[1:-1], role)
        text = text.replace(json.dumps(str(path))[1:-1], role)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, required=True, help="fine-tuned HF checkpoint dir")
    parser.add_argument("--run-dir", type=Path, help="edgecompress run directory (artifacts/*)")
    parser.add_argument("--artifact-dir", type=Path, action="append", default=[],
                        help="an edgecompress artifact folder (manifest.json), e.g. from "
                             "`edgecompress quantize --out`; repeatable")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved latency rounds (>= 5)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per row per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per row per round")
    parser.add_argument("--limit", type=int, help="first N test sentences (default: all 2000)")
    parser.add_argument("--work", type=Path, help="keep (and reuse) built artifacts here")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/anchors.json"))
    parser.add_argument("--markdown", type=Path, help="only print the markdown table of this "
                                                      "result JSON (no measurement)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(json.loads(args.markdown.read_text())))
        return
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    if not (args.teacher / "config.json").is_file():
        parser.error(f"--teacher {args.teacher}: no config.json (not a HF checkpoint)")
    if args.run_dir is not None and not (args.run_dir / "artifacts").is_dir():
        parser.error(f"--run-dir {args.run_dir}: no artifacts/ folder")
    for folder in args.artifact_dir:
        if not (folder / "manifest.json").is_file():
            parser.error(f"--artifact-dir {folder}: no manifest.json")
    started = time.perf_counter()
    info = host()
    texts, labels, data_file = load_test_split(args.limit)
    module, tokenizer, config = load_teacher(args.teacher)
    ids, mask = tokenize(tokenizer, texts)
    sample = (ids[:1], mask[:1])  # latency input: the first test sentence and its padding to 128
    with tempfile.TemporaryDirectory(prefix="anchors-") as tmp:
        # Reused artifacts are keyed by the teacher's weights: a new teacher never meets old files.
        work = (args.work / fingerprint(args.teacher)) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ours = (best_run_artifacts(args.run_dir) if args.run_dir else []) + args.artifact_dir
        rows = build_rows(module, config, sample, work, ours, texts)
        rows += openvino_rows(module, tokenizer, work, args.run_dir, texts)
        lat = latency(rows, sample, args.repeats, args.runs, args.warmup)
        for i, real in real_length_latency(rows, ids, mask, args.repeats).items():
            lat[i].update(real)
        scored = score(rows, lat, tokenizer, texts, labels)
    info["loadavg_end"] = list(os.getloadavg())
    result = {"command": " ".join([sys.executable, *sys.argv]), "teacher": str(args.teacher),
              "run_dir": str(args.run_dir) if args.run_dir else None,
              "edgecompress_artifacts": [str(f) for f in ours], "data": data_file,
              "n": int(len(labels)), "seq_len": SEQ, "batch": 1, "threads": THREADS,
              "repeats": args.repeats, "runs": args.runs, "warmup": args.warmup,
              "tokenization": f"accuracy as deployed: truncated at {SEQ} tokens, batch 1 at "
                              "real lengths (fixed-shape files at their signature; each row's "
                              "evaluated_as); latency inputs padded to 128 (teacher tokenizer; "
                              "edgecompress rows use their artifact's tokenizer)",
              "attn_implementation": "eager", "host": info,
              "wall_s": round(time.perf_counter() - started, 1), "rows": scored}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(without_local_paths(json.dumps(result, indent=2), args) + "\n")
    tmp_out.replace(args.out)
    print_table(result)
    print(markdown_table(result))
    print(f"wrote {args.out} in {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
