"""A recipe whose model is a decoder language model: its keys, its checks and its plan.

    name = "slm"
    model = "smollm2-135m"             # registry name, .gguf file or decoder checkpoint dir
    dataset = "bbc-news"               # optional for registry models (their own text)
    targets = ["x86-cpu-llm", "llamacpp"]  # LLM target profiles (names or .toml paths)
    anchors = "../benchmarks/results/slm_anchors.json"  # optional: rows shown on the front
    vocab_from = "tok.gguf"            # GGUF targets of a user's checkpoint: `llm export
                                       # --vocab-from` (default: the registry model's GGUF)

    [prune]     # LMPruneConfig keys (`edgecompress llm prune`'s flags): drop_layers, ...
    [distill]   # LMDistillConfig keys (`llm distill`): steps, batch_size, context, ...
    [quantize]  # optional: schemes = {target = scheme}
    [eval]      # EvalConfig keys (`llm eval`): context, stride, windows, ...
    [bench]     # LMBenchConfig keys (`llm bench`): repeats, prompt_lengths, new_tokens

It is parsed into the same `Recipe` as an encoder recipe (its `llm` field set) and planned into
the same `Step`s, run by the same loop (runs.py: identities, done records, lock, run.json):
prune and distill train on the dataset's `train` split (the other splits must share no text
with it), every target gets export (its gate refuses it like an encoder's parity gate), eval
(KL / top-1 / perplexity against the recipe's model on the `test` split, `llm eval`'s
definitions) and bench (`llm bench`: TTFT, decode tokens/s, peak RSS, size, host). The steps
are plan.py's `llm_plan_steps`, the stages llm_stages.py, the checks before a run writes
anything checks.py's `llm_checks`; the report is reports/llm.py's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgecompress.compress.config import build, tuples
from edgecompress.compress.llm.config import (
    EvalConfig,
    LMBenchConfig,
    LMDistillConfig,
    LMPruneConfig,
)
from edgecompress.errors import UserError
from edgecompress.rundir import LLM_RUN_KIND

LLM_KEYS = {"name", "model", "dataset", "targets", "description", "anchors", "vocab_from",
            "prune", "distill", "quantize", "eval", "bench"}
LLM_STAGES = {"prune": LMPruneConfig, "distill": LMDistillConfig}  # in run order
TRAIN_SPLIT, EVAL_SPLIT = "train", "test"  # as the `llm` commands' --split defaults


@dataclass(frozen=True)
class LLMSettings:
    """What an LLM recipe adds to `Recipe`: how artifacts are scored and timed, and the
    anchors file the report puts on the front."""

    eval: EvalConfig
    bench: LMBenchConfig
    anchors: str | None = None
    vocab_from: str | None = None  # the tokenizer GGUF of GGUF targets (None: the registry's)


@dataclass(frozen=True)
class LLMExportConfig:
    """One target's export step: the target (a built-in by name, a user's profile by path) and
    the scheme in force."""

    target: str
    scheme: str


@dataclass(frozen=True)
class LLMEvalConfig:
    """One target's eval step: `llm eval`'s settings and the split scored."""

    eval: EvalConfig
    split: str = EVAL_SPLIT


@dataclass(frozen=True)
class LLMBenchStepConfig:
    """One target's bench step: `llm bench`'s settings at 1 thread and the target's."""

    target: str
    bench: LMBenchConfig
    threads: tuple[int, ...]


def is_llm_model(model: str) -> bool:
    """True when `model` (a recipe's value, resolved) names a decoder LM: a registry LLM, a
    .gguf file or a checkpoint directory of a decoder family. Reads a config file at most."""
    from edgecompress.compress.llm.families import is_decoder_config
    from edgecompress.compress.llm.sources import MODEL_SOURCES

    if model in MODEL_SOURCES or model.lower().endswith(".gguf"):
        return True
    config = Path(model) / "config.json"
    try:
        return is_decoder_config(json.loads(config.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        return False


def _key(path: str) -> str:
    return f"key '{path}'"


def _schemes(path: Path, data: dict, profiles: dict) -> tuple[tuple[str, str], ...]:
    section = data.get("quantize", {})
    if not isinstance(section, dict) or set(section) - {"schemes"}:
        raise UserError(f"{path}: key 'quantize': expected a table with only schemes = "
                        "{target = scheme}")
    schemes = section.get("schemes", {})
    if not isinstance(schemes, dict) or not all(isinstance(v, str) for v in schemes.values()):
        raise UserError(f"{path}: key 'quantize.schemes': expected a table of target = scheme")
    for target, scheme in schemes.items():
        if target not in profiles:
            raise UserError(f"{path}: key 'quantize.schemes.{target}': not one of the recipe's "
                            f"targets ({', '.join(profiles)})")
        try:
            profiles[target].with_scheme(scheme)
        except UserError as err:
            raise UserError(f"{path}: key 'quantize.schemes.{target}': {err}") from None
    return tuple(sorted(schemes.items()))


def _table(path: Path, data: dict, name: str, cls):
    """Section `name` of the recipe as `cls` (its field names are the keys); absent: defaults."""
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise UserError(f"{path}: {_key(name)}: expected a table")
    return build(cls, tuples(section), lambda field: _key(f"{name}.{field}"), str(path))


def _anchors(path: Path, data: dict, resolve) -> str | None:
    """The anchors file, resolved against the recipe and checked: a JSON object with `rows`."""
    from edgecompress.rundir import read_object

    if "anchors" not in data:
        return None
    value = data["anchors"]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{path}: key 'anchors': expected a path to an anchors JSON file")
    file = Path(resolve(path, value))
    try:
        rows = read_object(file, missing_ok=False).get("rows")
    except UserError as err:
        raise UserError(f"{path}: key 'anchors': {err}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{path}: key 'anchors': {file} has no 'rows' list (not an anchors "
                        "file such as benchmarks/results/slm_anchors.json)")
    return str(file)


def _vocab_from(path: Path, data: dict, resolve) -> str | None:
    if "vocab_from" not in data:
        return None
    value = data["vocab_from"]
    if not isinstance(value, str) or not Path(resolve(path, value)).is_file():
        raise UserError(f"{path}: key 'vocab_from': expected the path of an existing .gguf file "
                        f"(the tokenizer GGUF targets copy), got {value!r}")
    return resolve(path, value)


def tokenizer_file(recipe, profile) -> str | None:
    """The tokenizer GGUF a GGUF target of `recipe` copies: its `vocab_from`, else the registry
    model's own GGUF (None for other formats); UserError when a GGUF target has none."""
    from edgecompress.compress.llm.export import tokenizer_gguf

    if profile.format != "gguf":
        return None
    found = recipe.llm.vocab_from or tokenizer_gguf(recipe.model)
    if found is None:
        raise UserError(f"key 'vocab_from': needed, target {profile.name} copies the tokenizer "
                        f"from a GGUF of the same vocabulary and {recipe.model} is not a "
                        "registry model nor pruned from one")
    return str(found)


def _dataset(path: Path, data: dict, model: str, resolve) -> str:
    from edgecompress.compress.llm.sources import default_dataset

    if "dataset" not in data:
        found = default_dataset(model)
        if found is None:
            raise UserError(f"{path}: key 'dataset': needed, {model} is not a registry model "
                            "nor pruned from one, so it has no default text")
        return found
    value = data["dataset"]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{path}: key 'dataset': expected a registry dataset or a .csv / "
                        ".jsonl path with a text and a split column")
    return resolve(path, value)


def llm_recipe_fields(path: Path, data: dict, resolve_relative, check_keys,
                      read_targets) -> dict:
    """The fields of a Recipe (its `llm` set) from the TOML table of a recipe whose model is a
    decoder LM, with recipe.py's `resolve_relative`, `check_keys` and `read_targets` (given the
    LLM profiles' loader); UserError naming the file and the key for anything that cannot run.
    Reads no weights."""
    from edgecompress.targets.llm.profile import load_llm_profile

    check_keys(path, "recipe", data, LLM_KEYS)
    model = resolve_relative(path, data["model"])
    targets, profiles = read_targets(path, data, load_llm_profile)
    stages = tuple((name, json.dumps(_table(path, data, name, cls).to_json(), sort_keys=True))
                   for name, cls in LLM_STAGES.items() if name in data)
    llm = LLMSettings(eval=_table(path, data, "eval", EvalConfig),
                      bench=_table(path, data, "bench", LMBenchConfig),
                      anchors=_anchors(path, data, resolve_relative),
                      vocab_from=_vocab_from(path, data, resolve_relative))
    name = data.get("name") or path.stem
    if not isinstance(name, str):
        raise UserError(f"{path}: key 'name': expected a string")
    return {"name": name, "model": model, "targets": targets, "stages": stages,
            "dataset": _dataset(path, data, model, resolve_relative),
            "schemes": _schemes(path, data, profiles), "source": str(path), "llm": llm}


def run_identity(recipe) -> dict:
    """run.json of an LLM recipe: what makes two runs the same run, and what the report reads
    (the kind, the eval and bench settings, the anchors file)."""
    return {"kind": LLM_RUN_KIND, "recipe": recipe.name, "model": recipe.model,
            "dataset": recipe.dataset, "targets": list(recipe.targets),
            "stages": [[name, json.loads(s)] for name, s in recipe.stages],
            "schemes": dict(recipe.schemes), "eval": recipe.llm.eval.to_json(),
            "eval_split": EVAL_SPLIT, "train_split": TRAIN_SPLIT,
            "bench": recipe.llm.bench.to_json(), "anchors": recipe.llm.anchors,
            **({"vocab_from": recipe.llm.vocab_from} if recipe.llm.vocab_from else {})}


def stage_config(recipe, name: str):
    """The frozen config of LLM stage `name` (`prune` / `distill`) of `recipe`."""
    return LLM_STAGES[name](**tuples(recipe.settings(name)))


def llm_profile(recipe, target: str):
    """The LLM target's profile with the recipe's scheme override applied."""
    from edgecompress.targets.llm.profile import load_llm_profile

    profile = load_llm_profile(target)
    scheme = recipe.scheme_for(profile.name)
    return profile if scheme is None else profile.with_scheme(scheme)
