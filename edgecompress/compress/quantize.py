"""The `quantize` stage: a checkpoint -> one verified, quantized artifact for a target.

Steps: load the model and make it integer-friendly (a bounded -100 additive attention mask built
by a gather, so full-int8 calibration cannot destroy masking — DESIGN.md); draw calibration
sentences that keep the dataset's sequence-length distribution; optionally run the accuracy-aware
fallback (`max_drop`, compress/fallback.py) that keeps the most sensitive layers in float; export
through the same parity gate as fp32 with the scheme's tolerance; blame each layer (SNR of its
output vs torch); write artifact + tokenizer + manifest.json + quantize.json into `out`.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgecompress.compress.artifacts import MANIFEST, artifact_manifest, parity_sample
from edgecompress.compress.evaluate import tokenize
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json

MASK_VALUE = -100.0  # as the plain encoder: bounded so int8 can represent "masked"
CALIBRATION_BATCH = 8  # rows padded together, so calibration sees the mask's -100 on padding
BLAME_ROWS = 32
REPORT = "quantize.json"


class IntegerFriendlyClassifier(nn.Module):
    """An HF sequence classifier whose mask and embeddings quantize to integer ops.

    transformers 5 builds a boolean mask that exports as Where(mask, 0, float-min): calibration
    gives it a useless scale and padding stops being masked. Here the additive mask is a gather
    from the table [-100, 0] (int8-exact) passed as a ready 4D mask, and token embeddings are a
    gather too (EMBEDDING_LOOKUP stays float in ai-edge-quantizer's full-integer recipe).
    `.hf` is the wrapped model, as in ClassifierModule, so saving works unchanged.
    """

    def __init__(self, hf, gather_embeddings: bool = True):
        super().__init__()
        self.hf, self.gather_embeddings = hf, gather_embeddings
        self.register_buffer("mask_table", torch.tensor([MASK_VALUE, 0.0]), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        additive = self.mask_table[attention_mask.long()][:, None, None, :]  # (B, 1, 1, S)
        if not self.gather_embeddings:
            return self.hf(input_ids=input_ids, attention_mask=additive).logits
        embeddings = self.hf.get_input_embeddings().weight[input_ids.long()]  # (B, S, H)
        return self.hf(inputs_embeds=embeddings, attention_mask=additive).logits


def integer_friendly(module: nn.Module, fmt: str = "tflite") -> nn.Module:
    """Wrap an HF classifier (ClassifierModule) as IntegerFriendlyClassifier; others unchanged.

    The plain encoder already uses a -100 additive mask. ONNX keeps its Gather embedding (ORT's
    QDQ quantizer handles Gather, not the GatherND an indexing op exports to).
    """
    from edgecompress.compress.models import ClassifierModule

    if isinstance(module, ClassifierModule):
        return IntegerFriendlyClassifier(module.hf, gather_embeddings=fmt == "tflite").eval()
    return module


def encoder_layers(module: nn.Module) -> list[str]:
    """Qualified names of the Transformer blocks (`hf.bert.encoder.layer.3`, `layers.1`)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers"):
            return [f"{name}.{i}" for i in range(len(child))]
    return []


@dataclass(frozen=True)
class Calibration:
    """Calibration batches (int64 (B, S), padded per batch) and what was drawn, for the manifest."""

    batches: tuple[dict, ...]
    record: dict

    def rows(self, limit: int | None = None) -> list[dict]:
        """One-row feeds {input_ids, attention_mask} (1, S), at most `limit`."""
        out = [{k: b[k][i:i + 1] for k in b} for b in self.batches for i in range(len(b["input_ids"]))]
        return out[:limit]


def calibration_set(split, tokenizer, n: int, max_length: int, *, seed: int = 0,
                    split_name: str = "train") -> Calibration:
    """Draw `n` real sentences keeping the split's sequence-length distribution.

    The split is ordered by token length and cut into `n` equal strata; one sentence is drawn at
    random (fixed seed) from each, so short and long sentences appear as often as in the data.
    Raises UserError when the split holds fewer than `n` sentences.
    """
    texts = list(split.texts)
    if n < 1 or n > len(texts):
        raise UserError(f"calibration set smaller than asked: {split_name} has {len(texts)} "
                        f"sentences, asked for {n}")
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True,
                                             max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    rng = random.Random(seed)
    bounds = np.linspace(0, len(texts), n + 1).astype(int)  # stratum edges in `order`
    picked = [order[rng.randrange(lo, hi)] for lo, hi in zip(bounds[:-1], bounds[1:])]
    rng.shuffle(picked)  # mixed lengths per batch: padding (and the -100 mask) gets calibrated
    batches = tuple(tokenize(tokenizer, [texts[i] for i in picked[s:s + CALIBRATION_BATCH]],
                             max_length) for s in range(0, n, CALIBRATION_BATCH))
    chosen = np.array([lengths[i] for i in picked])
    record = {"split": split_name, "n": n, "seed": seed, "indices": picked,
              "tokens": _length_summary(chosen),
              "split_tokens": _length_summary(np.array(lengths))}
    return Calibration(batches, record)


def _length_summary(lengths: np.ndarray) -> dict:
    return {"min": int(lengths.min()), "p25": float(np.percentile(lengths, 25)),
            "p50": float(np.median(lengths)), "p75": float(np.percentile(lengths, 75)),
            "max": int(lengths.max()), "mean": round(float(lengths.mean()), 2)}


def layer_blame(artifact: Path, module: nn.Module, scopes: list[str], rows: list[dict],
                fixed_shape: tuple[int, int] | None, fp32: Path | None = None) -> list[dict]:
    """Per-layer error of the artifact vs torch on `rows`, worst first.

    For each scope: SNR in dB and relative MSE (error energy / signal energy) of the layer's
    output over real (unpadded) tokens; `fp32` (the fp32 artifact) names the tapped tensors.
    Returns [{layer, snr_db, rel_mse}] sorted by rel_mse, worst first.
    """
    from edgecompress.targets.taps import artifact_taps

    if fixed_shape:  # the artifact takes exactly (1, seq); torch sees the same padded rows
        rows = [{k: np.pad(v, ((0, 0), (0, fixed_shape[1] - v.shape[1]))) for k, v in r.items()}
                for r in rows]
    got = artifact_taps(artifact, module, scopes, rows, fp32=fp32)
    want = _torch_taps(module, list(got), rows)
    blame = []
    for scope in got:
        signal = error = 0.0
        for row, ref, out in zip(rows, want[scope], got[scope]):
            real = row["attention_mask"][0].astype(bool)  # (S,)
            ref, out = ref[0][real].astype(np.float64), out.reshape(ref.shape)[0][real]
            signal += float(np.sum(ref ** 2))
            error += float(np.sum((ref - out) ** 2))
        rel = error / max(signal, 1e-30)
        blame.append({"layer": scope, "rel_mse": rel,
                      "snr_db": float(10 * np.log10(1 / max(rel, 1e-30)))})
    return sorted(blame, key=lambda b: -b["rel_mse"])


def _torch_taps(module: nn.Module, scopes: list[str], rows: list[dict]) -> dict[str, list]:
    """scope -> (1, S, H) outputs of that submodule per row, via forward hooks."""
    out: dict[str, list] = {s: [] for s in scopes}
    hooks = []
    for scope in scopes:
        def hook(_module, _inputs, output, scope=scope):
            value = output[0] if isinstance(output, tuple) else output
            out[scope].append(value.detach().float().numpy())
        hooks.append(module.get_submodule(scope).register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for row in rows:
                module(torch.from_numpy(row["input_ids"]), torch.from_numpy(row["attention_mask"]))
    finally:
        for handle in hooks:
            handle.remove()
    return out


@dataclass(frozen=True)
class QuantizeRequest:
    """What `edgecompress quantize` asks for. `max_drop` is in accuracy points (1.0 = one point)
    unless `relative`, then a fraction of the fp32 dev accuracy (0.01 = 1 %)."""

    model: str
    target: str
    out: Path
    dataset: str = "rt-polarity"
    scheme: str | None = None  # default: the target's
    calibration_samples: int | None = None  # default: the target's [calibration] samples
    calibration_method: str | None = None
    calibration_split: str = "train"
    max_drop: float | None = None
    relative: bool = False
    dev_split: str = "dev"
    dev_samples: int | None = None  # cap on dev sentences the fallback evaluates (all if None)
    seed: int = 0
    force: bool = False

    def __post_init__(self) -> None:
        if self.max_drop is not None and not self.max_drop >= 0:
            raise ValueError(f"max_drop: expected a number >= 0, got {self.max_drop}")
        if self.calibration_samples is not None and self.calibration_samples < 1:
            raise ValueError(f"calibration_samples: expected >= 1, got {self.calibration_samples}")


def run_quantize(request: QuantizeRequest) -> dict:
    """Quantize `request.model` for its target into `request.out`; returns the manifest.

    Raises UserError for bad input (a scheme the target cannot run, a calibration set smaller
    than asked, `max_drop` on an unlabelled dataset, an occupied `out` without force) and
    ParityError when the final artifact fails the scheme's parity gate.
    """
    from edgecompress.compress.data import load_dataset
    from edgecompress.compress.pipeline import prepare_out_dir
    from edgecompress.compress.prune.surgery import load_pruned
    from edgecompress.targets import export, load_profile
    from edgecompress.targets.profiles import CALIBRATION_METHODS

    began = time.perf_counter()
    profile = load_profile(request.target)
    spec = profile.scheme_for(request.scheme)
    method = request.calibration_method or profile.calibration_method
    if method not in CALIBRATION_METHODS[profile.format]:
        raise UserError(f"calibration method {method!r} is not available for {profile.format} "
                        f"(choose: {', '.join(CALIBRATION_METHODS[profile.format])})")
    data = load_dataset(request.dataset)
    dev = _dev_split(data, request) if request.max_drop is not None else None
    prepare_out_dir(request.out, {"source": str(request.model), "target": profile.name,
                                  "scheme": spec.name}, request.force)
    loaded = load_pruned(request.model)
    # Only full-integer schemes need it: dynamic / weight-only / fp16 keep float activations, and
    # the embedding gather would stay fp32 there (EMBEDDING_LOOKUP is what they shrink).
    module = integer_friendly(loaded.module, profile.format) if spec.calibrated else loaded.module
    calib = calibration_set(data.split(request.calibration_split), loaded.tokenizer,
                            request.calibration_samples or profile.calibration_samples,
                            profile.seq_len, seed=request.seed,
                            split_name=request.calibration_split)
    sample = parity_sample(loaded.tokenizer, profile.seq_len)
    # ".tmp": a run killed here leaves a folder that the next run's stale-temp sweep removes
    with tempfile.TemporaryDirectory(prefix=".quantize-", suffix=".tmp",
                                     dir=_parent(request.out)) as tmp:
        base_profile = dataclasses.replace(profile, schemes=(), scheme="fp32")
        base = export(module, sample, base_profile, Path(tmp), name="fp32")
        options = _options(calib, method, module, Path(tmp), profile.format)
        fallback = None
        if dev is not None:
            from edgecompress.compress.fallback import accuracy_fallback

            fallback = accuracy_fallback(module, base.path, spec, options, profile, dev,
                                         loaded.tokenizer, request)
            options = dataclasses.replace(options, float_scopes=tuple(fallback["float_layers"]))
        result = export(module, sample, profile, request.out, scheme=spec.name, quant=options,
                        base=base)
        blame = layer_blame(result.path, module, encoder_layers(module), calib.rows(BLAME_ROWS),
                            profile.fixed_shape, fp32=base.path)
    loaded.tokenizer.save_pretrained(str(request.out))
    from edgecompress.targets.preflight import preflight

    checks = preflight(result.path).to_json()
    checks["required"] = profile.integer_only
    report = {"scheme": spec.name, "target": profile.name, "calibration": calib.record,
              "blame": blame, "fallback": fallback, "preflight": checks}
    manifest = {**_manifest(result, profile, loaded, request, calib, began), "preflight": checks}
    atomic_write_json(request.out / REPORT, report)
    atomic_write_json(request.out / MANIFEST, manifest)
    return {**manifest, "blame": blame, "fallback": fallback}


def summary_lines(manifest: dict) -> list[str]:
    """A few human lines for the CLI: artifact, parity, preflight, fallback, worst layers."""
    parity, checks = manifest["parity"], manifest["preflight"]
    lines = [f"{manifest['target']} {manifest['scheme']}: {manifest['artifact']} "
             f"({manifest['size_bytes'] / 1e6:.2f} MB), parity max |diff| "
             f"{parity['max_abs_diff']:.3g} (<= {parity['tolerance']:g}), argmax agreement "
             f"{parity['agreement']:.0%} (>= {parity['min_agreement']:.0%})"]
    floats = ", ".join(f"{e['op']} x{e['count']}" for e in checks["float_ops"][:6]) or "none"
    verdict = "" if not checks["required"] else (" — OK" if checks["integer_only"]
                                                 else " — NOT integer-only")
    lines.append(f"preflight: {checks['float_op_count']} float ops of {checks['ops_total']} "
                 f"({floats}){verdict}")
    fallback = manifest.get("fallback")
    if fallback:
        kept = ", ".join(fallback["float_layers"]) or "none"
        lines.append(f"fallback: layers kept in float: {kept}; "
                     f"{'met' if fallback['met'] else 'NOT met'} max drop "
                     f"{fallback['allowed_drop_points']:g} points")
        if fallback.get("note"):
            lines.append(fallback["note"])
    for entry in manifest["blame"][:3]:
        lines.append(f"blame: {entry['layer']}: SNR {entry['snr_db']:.1f} dB, "
                     f"rel MSE {entry['rel_mse']:.2e}")
    return lines


def _parent(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent


def _options(calib: Calibration, method: str, module, tmp: Path, fmt: str):
    from edgecompress.targets.quantize import QuantOptions

    return QuantOptions(calibration=calib.batches, method=method, module=module,
                        calibration_cache=tmp / f"calibration-{method}.{fmt}.cache")


def _dev_split(data, request: QuantizeRequest):
    """The labelled dev split the fallback measures on; UserError when it has no labels."""
    from edgecompress.compress.data import sample_texts

    split = data.split(request.dev_split)
    if split.labels is None:
        raise UserError(f"--max-drop needs a labelled dataset: {data.name}/{request.dev_split} "
                        f"has no labels")
    if request.dev_samples and request.dev_samples < len(split):
        split = sample_texts(split, request.dev_samples, seed=request.seed)
    return split


def _manifest(result, profile, loaded, request: QuantizeRequest, calib: Calibration,
              began: float) -> dict:
    """The artifact manifest: export_artifact's keys plus the scheme's gate and calibration."""
    quant = dict(result.quantization or {})
    quant.pop("float_regexes", None)  # long regexes: float_scopes names the same layers
    manifest = artifact_manifest(result, profile, loaded, source=str(request.model), began=began)
    manifest.update(quantization=quant,
                    calibration={k: v for k, v in calib.record.items() if k != "indices"},
                    calibration_indices=calib.record["indices"])
    return manifest
