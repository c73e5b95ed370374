"""The `prune` stage: load, measure, prune, measure again, save a loadable checkpoint and
`prune.json` (what was removed per layer, params / file size / accuracy before and after, how it
was scored, and the speedup gate when asked) — written atomically into its own directory.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.compress.identity import content_digest, identity, is_done
from edgecompress.compress.data.dataref import DataRef
from edgecompress.compress.evaluation.evaluate import classification_metrics, split_predictions
from edgecompress.compress.models.loading import load_model
from edgecompress.compress.models.loading import LoadedModel, save_model
from edgecompress.compress.prune.config import PruneConfig
from edgecompress.compress.prune.core import count_params, prune_model
from edgecompress.compress.prune.importance import Samples
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_directory, atomic_write_json, check_replaceable

MANIFEST = "prune.json"
RECOVERY_NOTE = "accuracy after pruning, before any recovery (distillation / fine-tuning)"


@dataclass(frozen=True)
class PruneRequest:
    model: str
    out: Path
    config: PruneConfig
    dataset: str | None = "rt-polarity"  # importance samples (train) and accuracy (test)
    evaluate: bool = True
    gate: str | None = None  # target profile for the real-speedup gate
    gate_runs: int = 50
    force: bool = False
    label_map: tuple[tuple[str, str], ...] = ()  # dataset label -> model label (by name)
    text_col: str | None = None  # columns of a user .csv / .jsonl (None: text, label, split)
    label_col: str | None = None
    split_col: str | None = None

    def data(self) -> DataRef:
        return DataRef(self.dataset, self.text_col, self.label_col, self.label_map,
                       self.split_col)


def run_prune(request: PruneRequest) -> dict:
    """Prune `request.model` into `request.out`; returns the manifest (also in prune.json).

    Raises UserError for bad input (an existing output without force, a dataset the model
    cannot read, any request the model cannot satisfy).
    """
    ident = _identity(request)
    done = is_done(request.out / MANIFEST, ident)
    if done is not None:
        return done  # the same model, data and config were pruned into `out`: reuse it
    return _make(request, ident)


def make_prune(request: PruneRequest) -> dict:
    """`run_prune` without the "already done?" check, for the run loop that made it once for
    the step (pipeline/runs.step_state)."""
    return _make(request, _identity(request))


def _make(request: PruneRequest, ident: str) -> dict:
    began = time.perf_counter()
    _check_out(request.out, request.force)
    loaded = load_model(request.model)
    data = _dataset(request, loaded)
    samples = _samples(loaded, data, request.config) if request.config.needs_data else None
    test = _test_split(loaded, data) if request.evaluate else None
    original = copy.deepcopy(loaded) if request.gate else None
    before = {"params": count_params(loaded), **_saved_sizes(loaded)}
    preds_before = _predictions(loaded, test, request.config) if test else None
    outcome = prune_model(loaded, request.config, samples)
    pruned = outcome.loaded
    manifest = {"kind": "prune", "source": str(request.model), "dataset": data and data.name,
                "config": request.config.to_json(), "request": _settings(request),
                "identity": ident,
                **outcome.report}
    if test:
        manifest["accuracy"] = _accuracy(pruned, test, preds_before, request.config)
    if request.gate:
        from edgecompress.compress.prune.gate import speedup_gate

        manifest["speedup_gate"] = speedup_gate(original, pruned, request.gate,
                                                runs=request.gate_runs)
    with atomic_directory(request.out) as tmp:
        save_model(pruned, tmp)
        after = {"params": count_params(pruned), **_sizes(tmp)}
        manifest.update(_before_after(before, after))
        manifest["seconds"] = round(time.perf_counter() - began, 2)
        atomic_write_json(tmp / MANIFEST, manifest)
    return manifest


def _settings(request: PruneRequest) -> dict:
    """What, besides its inputs' content, makes two prunes the same (as JSON reads it back)."""
    settings = {"config": request.config.to_json(), "evaluate": request.evaluate,
                "gate": request.gate, "gate_runs": request.gate_runs}
    if request.dataset is not None:  # absent when unused, so earlier prunes keep their identity
        settings.update(request.data().options())
    return json.loads(json.dumps(settings))


def _identity(request: PruneRequest) -> str:
    inputs = {"model": content_digest(request.model)}
    for name, spec in (("dataset", request.dataset), ("vocab_corpus", request.config.vocab_corpus)):
        if spec:
            inputs[name] = content_digest(spec)
    return identity("prune", _settings(request), inputs)


def _check_out(out: Path, force: bool) -> None:
    check_replaceable(out, force)


def _dataset(request: PruneRequest, loaded: LoadedModel):
    """The dataset, its labels renumbered to the model's classes by name (compress/data/labels.py)."""
    if request.dataset is None:
        return None
    if not (request.config.needs_data or request.evaluate):
        return None
    if loaded.task != "classification":
        return request.data().load()
    return request.data().for_model(loaded.labels)


def _labels_fit(loaded: LoadedModel, data) -> bool:
    return (data.task == "classification" and loaded.task == "classification" and bool(data.labels)
            and len(data.labels) == len(loaded.labels))


def _samples(loaded: LoadedModel, data, config: PruneConfig) -> Samples:
    """Up to `config.samples` train sentences; their labels when they fit the model's classes."""
    from edgecompress.compress.data.datasets import sample_texts

    if data is None:
        raise UserError("importance scoring needs --dataset (or use --importance magnitude)")
    train = data.split("train")
    if not len(train):
        raise UserError(f"dataset {data.name} has no train sentences to score importance on")
    picked = sample_texts(train, min(config.samples, len(train)), seed=config.seed)
    labels = picked.labels if _labels_fit(loaded, data) else None  # None: teacher argmax
    return Samples(picked.texts, labels, config.batch_size, config.max_length)


def _test_split(loaded: LoadedModel, data):
    if data is None or not _labels_fit(loaded, data):
        return None
    test = data.split("test")
    return test if len(test) and test.labels is not None else None


def _predictions(loaded: LoadedModel, split, config: PruneConfig) -> np.ndarray:
    from edgecompress.targets import torch_runner

    return split_predictions(torch_runner(loaded.module), loaded.tokenizer, split,
                             max_length=config.max_length)


def _accuracy(pruned: LoadedModel, split, preds_before: np.ndarray, config: PruneConfig) -> dict:
    truth, classes = np.asarray(split.labels), len(pruned.labels)
    before = classification_metrics(truth, preds_before, classes)
    after = classification_metrics(truth, _predictions(pruned, split, config), classes,
                                   reference_pred=preds_before)
    return {"split": "test", "before": before.to_json(), "after": after.to_json(),
            "drop": before.accuracy - after.accuracy, "note": RECOVERY_NOTE}


def _sizes(directory: Path) -> dict:
    from edgecompress.targets.bench import gzip_size

    files = sorted(directory.glob("*.safetensors"))
    return {"file_bytes": sum(f.stat().st_size for f in files),
            "gzip_bytes": sum(gzip_size(f) for f in files)}


def _saved_sizes(loaded: LoadedModel) -> dict:
    """Sizes of the unpruned model saved the same way as the pruned one (fair comparison)."""
    with tempfile.TemporaryDirectory(prefix="edgecompress-prune-") as tmp:
        save_model(loaded, Path(tmp))
        return _sizes(Path(tmp))


def _before_after(before: dict, after: dict) -> dict:
    return {key: {"before": before[key], "after": after[key],
                  "ratio": round(after[key] / before[key], 4) if before[key] else None}
            for key in ("params", "file_bytes", "gzip_bytes")}


def summary_lines(manifest: dict) -> list[str]:
    """Human-readable lines for the CLI: sizes, accuracy, gate verdict."""
    params, size = manifest["params"], manifest["file_bytes"]
    lines = [f"params {params['before']:,} -> {params['after']:,} ({params['ratio']:.1%}); "
             f"file {size['before'] / 1e6:.2f} MB -> {size['after'] / 1e6:.2f} MB"]
    if manifest.get("shapes_after"):  # None for a family only the vocabulary of is cut
        lines.append(f"heads per layer {manifest['shapes_after']['heads']}, "
                     f"FFN widths {manifest['shapes_after']['ffn']}")
    if "vocabulary" in manifest:
        vocab = manifest["vocabulary"]
        lines.append(f"vocabulary ({vocab['tokenizer']}): {vocab['vocab_before']:,} -> "
                     f"{vocab['vocab_after']:,} tokens, kept what {vocab['corpus_sentences']:,} "
                     "corpus sentences use")
    if "accuracy" in manifest:
        acc = manifest["accuracy"]
        lines.append(f"test accuracy {acc['before']['accuracy']:.2%} -> "
                     f"{acc['after']['accuracy']:.2%} (n={acc['after']['n']}; {RECOVERY_NOTE})")
    if "sparsity" in manifest:
        lines.append(f"sparsity: {manifest['sparsity']['zero_fraction']:.1%} zeros — "
                     f"{manifest['sparsity']['effect']}")
    if "speedup_gate" in manifest:
        g = manifest["speedup_gate"]
        lines.append(f"speedup gate on {g['target']}: {g['verdict']} (latency x"
                     f"{g['latency_ratio']:.2f}, size x{g['size_ratio']:.2f}, noise threshold "
                     f"{g['noise_threshold']:.0%})")
    return lines
