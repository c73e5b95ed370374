"""The `quantize` stage: a checkpoint -> one verified, quantized artifact for a target.

Steps: load the model and make it integer-friendly (a bounded -100 additive attention mask built
by a gather, so full-int8 calibration cannot destroy masking — docs/design); draw calibration
sentences that keep the dataset's sequence-length distribution; optionally run the accuracy-aware
fallback (`max_drop`, quantize/fallback.py) that keeps the most sensitive layers in float; export
through the same parity gate as fp32 with the scheme's tolerance; blame each layer (SNR of its
output vs torch); write artifact + tokenizer + manifest.json + quantize.json into `out`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.artifacts import (
    MANIFEST,
    artifact_manifest,
    difference_words,
    gate_sample,
    parity_sample,
    parity_words,
    precheck_export,
    prepare_out_dir,
)
from edgecompress.compress.identity import content_digest, identity, is_done, profile_digest, stamp
from edgecompress.compress.quantize.blame import layer_blame
from edgecompress.compress.quantize.calibration import Calibration, calibration_set
from edgecompress.compress.quantize.config import QuantizeConfig
from edgecompress.compress.quantize.integer import encoder_layers, integer_friendly
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_write_json, read_json

BLAME_ROWS = 32
REPORT = "quantize.json"


@dataclass(frozen=True)
class QuantizeRequest:
    """What `edgecompress quantize` asks for: a model, where to write, the config, the data."""

    model: str
    out: Path
    config: QuantizeConfig
    data: DataRef  # calibration (train) and fallback (dev) sentences
    force: bool = False


@dataclass(frozen=True)
class _Plan:
    """What one quantization resolved to before any work: profile, scheme, data, identity."""

    profile: object
    spec: object
    method: str
    data: object
    dev: object
    ident: str
    inputs: dict


def _plan(request: QuantizeRequest) -> _Plan:
    from edgecompress.compress.models.loading import checkpoint_labels
    from edgecompress.targets import load_profile
    from edgecompress.targets.extras import require
    from edgecompress.targets.profiles import CALIBRATION_METHODS

    config = request.config
    profile = load_profile(config.target)
    spec = profile.scheme_for(config.scheme)
    require(profile.format, f"target {profile.name}")  # before any data is read
    if not profile.keeps_float_layers and config.max_drop is not None:
        raise UserError(f"max_drop (the accuracy fallback) is not available for target "
                        f"{profile.name}: {profile.float_layers_refusal}")
    method = config.calibration_method or profile.calibration_method
    if method not in CALIBRATION_METHODS[profile.format]:
        raise UserError(f"calibration method {method!r} is not available for {profile.format} "
                        f"(choose: {', '.join(CALIBRATION_METHODS[profile.format])})")
    task, labels = checkpoint_labels(request.model)
    # the fallback's dev accuracy compares class ids: the dataset's, renumbered to the model's
    data = (request.data.for_model(labels) if task == "classification"
            else request.data.load())
    dev = _dev_split(data, config) if config.max_drop is not None else None
    inputs = {"model": content_digest(request.model), "dataset": content_digest(request.data.spec),
              "profile": profile_digest(dataclasses.replace(profile, scheme=spec.name))}
    ident = identity("quantize", {**config.to_json(), **request.data.options()}, inputs)
    return _Plan(profile, spec, method, data, dev, ident, inputs)


def run_quantize(request: QuantizeRequest) -> dict:
    """Quantize `request.model` for its target into `request.out`; returns the manifest.

    An identical earlier run (same model, data, profile and config content) is returned as is.
    Raises UserError for bad input (a scheme the target cannot run, a calibration set smaller
    than asked, `max_drop` on an unlabelled dataset, an occupied `out` without force) and
    ParityError when the final artifact fails the scheme's parity gate.
    """
    began = time.perf_counter()
    precheck_export(request.model, request.out, force=request.force)  # before data is read
    plan = _plan(request)
    done = is_done(request.out / MANIFEST, plan.ident, outputs=(request.out / REPORT,))
    if done is not None:
        return {**done, **{k: read_json(request.out / REPORT)[k] for k in ("blame", "fallback")}}
    return _make(request, plan, began)


def make_quantize(request: QuantizeRequest) -> dict:
    """`run_quantize` without the "already done?" check, for the run loop that made it once for
    the step (pipeline/runs.step_state)."""
    began = time.perf_counter()
    precheck_export(request.model, request.out, force=request.force)
    return _make(request, _plan(request), began)


def _make(request: QuantizeRequest, plan: _Plan, began: float) -> dict:
    from edgecompress.compress.models.loading import load_model

    prepare_out_dir(request.out, force=request.force)
    loaded = load_model(request.model)
    # Only full-integer schemes need it: dynamic / weight-only / fp16 keep float activations, and
    # the embedding gather would stay fp32 there (EMBEDDING_LOOKUP is what they shrink).
    module = (integer_friendly(loaded.module, plan.profile.format,
                               parity_sample(loaded.tokenizer, plan.profile.seq_len))
              if plan.spec.calibrated else loaded.module)
    config = request.config
    split = plan.data.split(config.calibration_split)
    wanted = config.calibration_samples or plan.profile.calibration_samples
    if not plan.spec.calibrated:  # only blame reads these rows: a small file is enough
        wanted = min(wanted, len(split))
    calib = calibration_set(split, loaded.tokenizer, wanted, plan.profile.seq_len,
                            seed=config.seed, split_name=config.calibration_split)
    result, blame, fallback = _quantize(module, loaded.tokenizer, plan, calib, request)
    loaded.tokenizer.save_pretrained(str(request.out))
    return _write(request, plan, result, loaded, calib, blame, fallback, began)


def _quantize(module, tokenizer, plan: _Plan, calib: Calibration, request: QuantizeRequest):
    """fp32 base export -> (fallback) -> quantized export through the parity gate -> blame."""
    from edgecompress.targets import export

    profile, spec = plan.profile, plan.spec
    sample = parity_sample(tokenizer, profile.seq_len)  # fp32 base: the fixed sentences
    verify_on = gate_sample(tokenizer, _held_out(plan.data, request.config).texts,
                            profile.seq_len, rows=profile.gate_rows, seed=request.config.seed)
    # ".tmp": a run killed here leaves a folder that the next run's stale-temp sweep removes
    with tempfile.TemporaryDirectory(prefix=".quantize-", suffix=".tmp",
                                     dir=_parent(request.out)) as tmp:
        base_profile = dataclasses.replace(profile, schemes=("fp32",), scheme="fp32")
        # a format quantized in torch lowers the module again: no fp32 file to start from
        base = (None if profile.quantizes_in_torch
                else export(module, sample, base_profile, Path(tmp), name="fp32"))
        options = _options(calib, plan.method, module, Path(tmp), profile.format)
        fallback = None
        if plan.dev is not None:
            from edgecompress.compress.quantize.fallback import accuracy_fallback

            fallback = accuracy_fallback(module, base.path, spec, options, profile, plan.dev,
                                         tokenizer, request.config)
            options = dataclasses.replace(options, float_scopes=tuple(fallback["float_layers"]))
        result = export(module, verify_on, profile, request.out, scheme=spec.name,
                        quant=options, base=base)
        blame = layer_blame(result.path, module, encoder_layers(module), calib.rows(BLAME_ROWS),
                            profile.fixed_shape, fp32=base and base.path)
    return result, blame, fallback


def _write(request, plan: _Plan, result, loaded, calib, blame, fallback, began) -> dict:
    from edgecompress.targets.preflight import preflight

    checks = None  # preflight reads onnx and tflite; pte profiles cannot be integer_only
    if result.path.suffix in (".onnx", ".tflite"):
        checks = {**preflight(result.path).to_json(), "required": plan.profile.integer_only}
    report = {"scheme": plan.spec.name, "target": plan.profile.name, "calibration": calib.record,
              "blame": blame, "fallback": fallback, "preflight": checks}
    manifest = {**_manifest(result, plan.profile, loaded, request, calib, began),
                "preflight": checks}
    manifest = stamp(manifest, plan.ident, plan.inputs)
    atomic_write_json(request.out / REPORT, report)
    atomic_write_json(request.out / MANIFEST, manifest)
    return {**manifest, "blame": blame, "fallback": fallback}


def summary_lines(manifest: dict) -> list[str]:
    """A few human lines for the CLI: artifact, parity, preflight, fallback, worst layers."""
    parity, checks = manifest["parity"], manifest["preflight"]
    lines = [f"{manifest['target']} {manifest['scheme']}: {manifest['artifact']} "
             f"({manifest['size_bytes'] / 1e6:.2f} MB), parity {difference_words(parity)}, "
             f"{parity_words(parity)}"]
    lines += _preflight_lines(checks)
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


def _preflight_lines(checks: dict | None) -> list[str]:
    if checks is None:  # a format preflight does not read
        return []
    floats = ", ".join(f"{e['op']} x{e['count']}" for e in checks["float_ops"][:6]) or "none"
    verdict = "" if not checks["required"] else (" — OK" if checks["integer_only"]
                                                 else " — NOT integer-only")
    return [f"preflight: {checks['float_op_count']} float ops of {checks['ops_total']} "
            f"({floats}){verdict}"]


def _parent(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent


def _options(calib: Calibration, method: str, module, tmp: Path, fmt: str):
    from edgecompress.targets.quantize import QuantOptions

    return QuantOptions(calibration=calib.batches, method=method, module=module,
                        calibration_cache=tmp / f"calibration-{method}.{fmt}.cache")


def _held_out(data, config: QuantizeConfig):
    """The split the parity gate draws real sentences from: dev, else the calibration split."""
    return data.splits.get(config.dev_split) or data.split(config.calibration_split)


def _dev_split(data, config: QuantizeConfig):
    """The labelled dev split the fallback measures on; UserError when it has no labels."""
    from edgecompress.compress.data.datasets import sample_texts

    split = data.split(config.dev_split)
    if split.labels is None:
        raise UserError(f"max_drop needs a labelled dataset: {data.name}/{config.dev_split} "
                        f"has no labels")
    if config.dev_samples and config.dev_samples < len(split):
        split = sample_texts(split, config.dev_samples, seed=config.seed)
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
