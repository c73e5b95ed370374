"""Recipes: one TOML file naming the model, the data, the stages and the targets.

    name = "demo"
    model = "minilm-l6"            # built-in name or checkpoint dir (relative to this file)
    dataset = "rt-polarity"        # registry name or CSV/JSONL path (relative to this file),
                                   # or a table: {path = "x.csv", text_col = "prompt",
                                   # label_col = "is_injection", split_col = "fold"} (columns
                                   # of a user file), or one file per split: {train = "a.csv",
                                   # dev = "b.csv" (optional), test = "c.csv", text_col = ..}
    targets = ["x86-cpu", "rpi5"]  # names or profile .toml paths (each at most once)
    label_map = {fresh = "positive", rotten = "negative"}  # optional: dataset -> model labels,
                                   # for a model trained elsewhere (not with [finetune])

    [finetune]   # optional: train a classifier first (FinetuneConfig keys + seeds)
    [prune]      # optional: PruneConfig keys (heads, ffn, layers, keep_layers, vocab_corpus, ...)
                 # + rounds: prune and distill in N rounds (plan.round_settings)
    [distill]    # optional: DistillConfig keys + seeds + student ("pruned" or "layers:1,3,5"),
                 # train_size, qat_target / qat_scheme (train with a target's fake quantization)
    [quantize]   # optional: schemes = {target = scheme}, max_drop = points | {target = points}
    [bench]      # optional: runs, warmup
    [verify]     # optional: enabled, rows, cpus — targets whose profile sets verify_isa run on
                 # that ISA's CPU kernels under emulation after their eval (VerifyConfig)
    [search]     # optional: the space `edgecompress search` explores (search/space.py)

Parsed once, here, into frozen dataclasses; every message names the file and the key. Stage
settings are validated by building the stage's own config object, so a recipe accepts exactly the
keys the stage has.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecompress.compress.config import FieldError, build, check_types, tuples
from edgecompress.compress.data.dataref import DataRef
from edgecompress.errors import UserError

TOP_KEYS = {"name", "model", "dataset", "targets", "description", "finetune", "prune",
            "distill", "quantize", "bench", "label_map", "search", "verify"}
STAGE_ORDER = ("finetune", "prune", "distill")  # quantization happens at export, per target
QUANTIZE_KEYS = {"schemes", "max_drop"}
ROUNDS_KEY = "rounds"  # [prune] rounds = N: prune a little, recover, N times (plan.round_settings)
SPLIT_FRACTIONS = ("heads", "ffn", "layers")  # what rounds cut a share of each time
BENCH_KEYS = {"runs", "warmup"}


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    dataset: str
    targets: tuple[str, ...]
    stages: tuple[tuple[str, str], ...]  # (stage, settings as canonical JSON), in run order
    schemes: tuple[tuple[str, str], ...] = ()  # (target, scheme) overrides
    max_drop: tuple[tuple[str, float], ...] = ()  # (target or "*", accuracy points)
    bench_runs: int = 100
    bench_warmup: int = 10
    source: str = ""
    label_map: tuple[tuple[str, str], ...] = ()  # dataset label -> model label
    text_col: str | None = None  # columns of a user .csv / .jsonl (None: text, label, split)
    label_col: str | None = None
    split_col: str | None = None
    verify: object = None  # target_stages.VerifyConfig (None: its defaults)
    llm: object = None  # llm_plan.LLMSettings: the model is a decoder LM (llm_plan.py)

    def __post_init__(self) -> None:
        if self.verify is None:
            from edgecompress.compress.pipeline.target_stages import VerifyConfig

            object.__setattr__(self, "verify", VerifyConfig())

    def data(self) -> DataRef:
        """The dataset every stage reads: spec, columns and label map."""
        return DataRef(self.dataset, self.text_col, self.label_col, self.label_map,
                       self.split_col)

    def settings(self, stage: str) -> dict | None:
        for name, settings in self.stages:
            if name == stage:
                return json.loads(settings)
        return None

    def scheme_for(self, target: str) -> str | None:
        return dict(self.schemes).get(target)

    def max_drop_for(self, target: str) -> float | None:
        """Allowed accuracy drop (points) for the fallback loop of `target`; None: no fallback."""
        drops = dict(self.max_drop)
        return drops.get(target, drops.get("*"))

    def identity(self) -> dict:
        """What makes two runs the same run (the source path does not)."""
        if self.llm is not None:
            from edgecompress.compress.pipeline.llm_plan import run_identity

            return run_identity(self)
        return {"kind": "edgecompress-run", "recipe": self.name, "model": self.model,
                "dataset": self.dataset, "targets": list(self.targets),
                "stages": [[name, json.loads(s)] for name, s in self.stages],
                "schemes": dict(self.schemes), "max_drop": dict(self.max_drop),
                **({"label_map": dict(self.label_map)} if self.label_map else {}),
                **{k: v for k, v in (("text_col", self.text_col), ("label_col", self.label_col),
                                     ("split_col", self.split_col)) if v},
                **({"verify": dataclasses.asdict(self.verify)}
                   if self.verify != type(self.verify)() else {})}

def _err(path: Path, key: str, expected: str) -> UserError:
    return UserError(f"{path}: key '{key}': expected {expected}")


def resolve_relative(path: Path, value: str) -> str:
    """Paths in a recipe are relative to the recipe file; names stay names."""
    candidate = path.parent / value
    return str(candidate.resolve()) if ("/" in value or candidate.exists()) else value


COLUMN_KEYS = ("text_col", "label_col", "split_col")
SPLIT_KEYS = ("train", "dev", "test")
DATASET_KEYS = {"path", "name", *COLUMN_KEYS, *SPLIT_KEYS}


def _dataset(path: Path, data: dict) -> dict:
    """Recipe fields of `dataset`: a name / path string, or a table with the file's columns (or
    one file per split)."""
    value = data.get("dataset")
    if not isinstance(value, dict):
        return {"dataset": resolve_relative(path, _string(path, data, "dataset"))}
    _check_keys(path, "dataset", value, DATASET_KEYS)
    per_split = any(key in value for key in SPLIT_KEYS)
    if ("path" in value) + ("name" in value) + per_split != 1:
        raise _err(path, "dataset", "a table with exactly one of path (a file), name (a "
                                    "registered dataset) or train / dev / test (one file per "
                                    "split)")
    found = {column: _string(path, value, column, f"dataset.{column}")
             for column in COLUMN_KEYS if column in value}
    if per_split:
        return {"dataset": _split_files(path, value), **found}
    key = "path" if "path" in value else "name"
    found["dataset"] = resolve_relative(path, _string(path, value, key, f"dataset.{key}"))
    if key == "name" and len(found) > 1:
        raise _err(path, "dataset", "text_col / label_col / split_col only with a path (a .csv / "
                                    f".jsonl file), not with the registered dataset "
                                    f"{value['name']!r}")
    return found


def _split_files(path: Path, value: dict) -> str:
    """The dataset spec of one file per split, each path relative to the recipe."""
    from edgecompress.compress.data.userfiles import split_files_spec

    if "split_col" in value:
        raise _err(path, "dataset.split_col", "no split column with one file per split (each "
                                              "of train / dev / test is its split, whole)")
    for key in ("train", "test"):
        if key not in value:
            raise _err(path, f"dataset.{key}", f"the {key} file (train and test are needed; "
                                               "dev is drawn from train when absent)")
    files = {}
    for key in SPLIT_KEYS:
        if key in value:
            files[key] = str((path.parent / _string(path, value, key, f"dataset.{key}"))
                             .resolve())
            if "," in files[key]:  # the spec separates its files with commas
                raise _err(path, f"dataset.{key}", f"a file path without ',' ({files[key]})")
    return split_files_spec(files)


def _string(path: Path, data: dict, key: str, where: str | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _err(path, where or key, "a non-empty string")
    return value


def _check_keys(path: Path, section: str, data: dict, known: set[str]) -> None:
    if not isinstance(data, dict):
        raise _err(path, section, "a table")
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown key '{section}.{unknown[0]}' "
                        f"(known: {', '.join(sorted(known))})")


def _check_student(student) -> None:
    """A student spec that cannot be right whatever the teacher (`fresh:layers=0`, `layers:a`,
    a word) is refused here, as the distill command refuses it, not when its step runs."""
    from edgecompress.compress.distill.students import check_spec

    if not isinstance(student, str) or not student.strip():
        raise FieldError("student", f"expected 'pruned', 'layers:1,3,5', 'fresh:...' or a "
                                    f"checkpoint directory, got {student!r}")
    if student == "pruned":
        return
    try:
        check_spec(student)
    except UserError as err:
        raise FieldError("student", str(err)) from None


def _key(path: str) -> str:
    """How a recipe (or a stage command's config file) names a setting: `key 'distill.seed'`."""
    return f"key '{path}'"


def _at(source: str, text: str) -> UserError:
    return UserError(f"{source}: {text}" if source else text)


def _distill_config(source: str, settings: dict, key: Callable[[str], str] = _key):
    """[distill] (+ [distill.train], [distill.transfer]) -> DistillStageConfig; messages name
    the key via `key`. Keys [distill.train] leaves out are those of DistillConfig's own training
    (DISTILL_TRAIN); those [distill.transfer] leaves out, TransferConfig's defaults."""
    from edgecompress.compress.distill.config import DISTILL_TRAIN, DistillConfig, TransferConfig
    from edgecompress.compress.pipeline.stages import DistillStageConfig
    from edgecompress.compress.training.config import FinetuneConfig

    extras = {f.name for f in dataclasses.fields(DistillStageConfig)} - {"distill"}
    values = tuples({k: v for k, v in settings.items() if k not in extras})
    tables = {"train": (FinetuneConfig, dataclasses.asdict(DISTILL_TRAIN)),
              "transfer": (TransferConfig, {})}
    for name, (cls, base) in tables.items():
        if isinstance(settings.get(name), dict):
            values[name] = build(cls, {**base, **tuples(settings[name])},
                                 lambda f, name=name: key(f"distill.{name}.{f}"), source)
    distill = build(DistillConfig, values, lambda f: key(f"distill.{f}"), source)
    extra = {k: v for k, v in settings.items() if k in extras}
    try:
        _check_student(extra.get("student", "pruned"))
        config = DistillStageConfig(distill=distill, **extra)
        check_types(config)
    except FieldError as err:
        raise _at(source, f"{key(f'distill.{err.field}')}: {err.message}") from None
    if config.train_size is not None and config.train_size < 1:
        raise _at(source, f"{key('distill.train_size')}: expected a positive integer, got "
                          f"{config.train_size}")
    if config.qat_target is not None:
        _check_qat(source, config, key)
    return config


def _check_qat(source: str, config, key: Callable[[str], str] = _key) -> None:
    from edgecompress.compress.distill.qat import qat_config_for
    from edgecompress.targets import load_profile

    try:
        qat_config_for(load_profile(config.qat_target), config.qat_scheme)
    except ValueError as err:
        raise _at(source, f"{key('distill.qat_target')}: {err}") from None


def stage_config(source: str, name: str, settings: dict, key: Callable[[str], str] = _key):
    """The frozen config of stage `name` from its recipe table; UserError names the file
    (`source`) and the setting, as `key(dotted path)` words it (a recipe key, or a flag)."""
    from edgecompress.compress.prune.config import PruneConfig

    if not isinstance(settings, dict):
        raise _at(source, f"{key(name)}: expected a table")
    if name == "distill":
        return _distill_config(source, settings, key)
    if name == "finetune":
        return _finetune_config(source, settings, key)
    return build(PruneConfig, tuples(settings), lambda f: key(f"{name}.{f}"), source)


def _finetune_config(source: str, settings: dict, key: Callable[[str], str] = _key):
    """[finetune] -> FinetuneStageConfig: FinetuneConfig keys plus `seeds`."""
    from edgecompress.compress.pipeline.stages import FinetuneStageConfig
    from edgecompress.compress.training.config import FinetuneConfig

    values = {k: v for k, v in settings.items() if k != "seeds"}
    train = build(FinetuneConfig, tuples(values), lambda f: key(f"finetune.{f}"), source)
    return build(FinetuneStageConfig, {"train": train, "seeds": settings.get("seeds", 1)},
                 lambda f: key(f"finetune.{f}"), source)


def build_stage_config(recipe: Recipe, name: str, settings: dict):
    """A step's config from its recipe table ([prune] rounds is the plan's, not the stage's)."""
    return stage_config(recipe.source, name, _without_rounds(name, settings))


def _without_rounds(name: str, settings):
    if name != "prune" or not isinstance(settings, dict):
        return settings
    return {k: v for k, v in settings.items() if k != ROUNDS_KEY}


def _check_rounds(path: Path, data: dict) -> None:
    """[prune] rounds = N (plan.round_settings): a whole number, with a [distill] that recovers
    the pruned model each round, enough epochs to give each round one, and only cuts a round
    can take a share of."""
    from edgecompress.compress.distill.config import DISTILL_TRAIN

    prune = data.get("prune")
    if not isinstance(prune, dict) or ROUNDS_KEY not in prune:
        return
    rounds = prune[ROUNDS_KEY]
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise _err(path, "prune.rounds", f"a positive integer, got {rounds!r}")
    if rounds == 1:
        return
    distill = data.get("distill")
    if not isinstance(distill, dict) or distill.get("student", "pruned") != "pruned":
        raise UserError(f"{path}: key 'prune.rounds': rounds recover the pruned model with "
                        "[distill] (student = \"pruned\") after each cut; add that table")
    unsplit = sorted(set(prune) & {"target_params", "target_mb", "sparsity", "nm"})
    if unsplit:
        raise UserError(f"{path}: key 'prune.rounds': rounds split the {', '.join(SPLIT_FRACTIONS)}"
                        f" fractions; prune.{unsplit[0]} cannot be split (use fractions)")
    if not any(prune.get(key) for key in SPLIT_FRACTIONS):
        raise UserError(f"{path}: key 'prune.rounds': nothing to cut in rounds (set one of "
                        f"prune.{', prune.'.join(SPLIT_FRACTIONS)})")
    train = distill.get("train") if isinstance(distill.get("train"), dict) else {}
    epochs = train.get("epochs", DISTILL_TRAIN.epochs)
    if isinstance(epochs, int) and epochs < rounds:
        raise UserError(f"{path}: key 'prune.rounds': {rounds} rounds need at least {rounds} "
                        f"distill.train.epochs (one a round), got {epochs}")


def _resolve_settings(path: Path, name: str, settings: dict) -> dict:
    """Paths inside stage tables (vocab_corpus, student) are relative to the recipe too."""
    keys = {"prune": ("vocab_corpus",), "distill": ("student",)}.get(name, ())
    return {k: (resolve_relative(path, v) if k in keys and isinstance(v, str) else v)
            for k, v in settings.items()}


def _with_corpus_columns(name: str, settings: str, dataset: dict) -> str:
    """[prune] settings (canonical JSON) with the dataset's text column for a vocabulary corpus
    that is the dataset's own file (or one of its split files): the recipe's columns apply
    wherever it reads that data. An explicit `vocab_corpus_text_col` (a corpus of other
    columns) is kept; any other corpus reads `text`."""
    from edgecompress.compress.data.userfiles import split_files

    table = json.loads(settings)
    corpus, column = table.get("vocab_corpus"), dataset.get("text_col")
    if name != "prune" or not corpus or not column or "vocab_corpus_text_col" in table:
        return settings
    spec = dataset["dataset"]
    files = set((split_files(spec) or {spec: spec}).values())
    if not any(_same_file(corpus, file) for file in files):
        return settings
    return json.dumps({**table, "vocab_corpus_text_col": column}, sort_keys=True)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:  # missing (the data checks say so): compare the names
        return Path(a).resolve() == Path(b).resolve()


def _targets(path: Path, data: dict, load=None) -> tuple[tuple[str, ...], dict]:
    """(targets as given, resolved against the recipe's folder; {profile name: profile}), each
    read by `load` (default: the encoder targets' load_profile; an LLM recipe passes its own)."""
    from edgecompress.targets import load_profile

    load = load or load_profile
    targets = data.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise _err(path, "targets", "a non-empty list of target names")
    resolved = tuple(resolve_relative(path, t) for t in targets)
    profiles = {}
    for given, target in zip(targets, resolved):
        try:
            profile = load(target)
        except UserError as err:
            raise UserError(f"{path}: key 'targets': {err}") from None
        if profile.name in profiles:
            raise UserError(f"{path}: key 'targets': target {profile.name!r} is listed twice "
                            f"(as {given!r}); each target runs once")
        profiles[profile.name] = profile
    return resolved, profiles


def _label_map(path: Path, data: dict) -> tuple[tuple[str, str], ...]:
    """The `label_map` table (dataset label = "model label"); not with a [finetune] stage, which
    trains the teacher on the dataset's own label names."""
    table = data.get("label_map")
    if table is None:
        return ()
    if not isinstance(table, dict) or not table or not all(
            isinstance(v, str) and v.strip() for v in table.values()):
        raise _err(path, "label_map", 'a table of dataset label = "model label"')
    if "finetune" in data:
        raise UserError(f"{path}: key 'label_map': not used with [finetune], which trains the "
                        "model on the dataset's own labels; remove one of them")
    return tuple((str(k).strip(), v.strip()) for k, v in table.items())


def _check_schemes(path: Path, schemes: dict, profiles: dict) -> None:
    """Each scheme override names a scheme its target can run (now, not when its export runs)."""
    for target, scheme in schemes.items():
        try:
            profiles[target].scheme_for(scheme)
        except UserError as err:
            raise UserError(f"{path}: key 'quantize.schemes.{target}': {err}") from None


def _quantize(path: Path, data: dict, targets: dict):
    """(scheme overrides, max_drop per target); `targets` maps profile names to profiles."""
    section = data.get("quantize") or {}
    _check_keys(path, "quantize", section, QUANTIZE_KEYS)
    schemes = section.get("schemes") or {}
    if not isinstance(schemes, dict) or not all(isinstance(v, str) for v in schemes.values()):
        raise _err(path, "quantize.schemes", "a table of target = scheme")
    unknown = sorted(set(schemes) - set(targets))
    if unknown:
        raise UserError(f"{path}: key 'quantize.schemes.{unknown[0]}': not one of the recipe's "
                        f"targets ({', '.join(targets)})")
    _check_schemes(path, schemes, targets)
    max_drop = section.get("max_drop")
    drops = (max_drop if isinstance(max_drop, dict)
             else ({} if max_drop is None else {"*": max_drop}))
    for target, value in drops.items():
        if target != "*" and target not in targets:
            raise UserError(f"{path}: key 'quantize.max_drop.{target}': not one of the recipe's "
                            f"targets ({', '.join(targets)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _err(path, "quantize.max_drop", "a number of accuracy points >= 0, or a "
                                                  "table of target = points")
    max_drop = tuple(sorted((t, float(v)) for t, v in drops.items()))
    return tuple(sorted(schemes.items())), max_drop


def _bench(path: Path, data: dict) -> tuple[int, int]:
    section = data.get("bench") or {}
    _check_keys(path, "bench", section, BENCH_KEYS)
    runs, warmup = section.get("runs", 100), section.get("warmup", 10)
    if not isinstance(runs, int) or runs < 1:
        raise _err(path, "bench.runs", "a positive integer")
    if not isinstance(warmup, int) or warmup < 0:
        raise _err(path, "bench.warmup", "a non-negative integer")
    return runs, warmup


def _verify(path: Path, data: dict, profiles: dict):
    """The [verify] table as a VerifyConfig; its CPU profiles must exist for every ISA the
    recipe's targets verify on."""
    from edgecompress.compress.evaluation.verify import cpu_names
    from edgecompress.compress.pipeline.target_stages import VerifyConfig

    section = data.get("verify", {})
    if not isinstance(section, dict):
        raise _err(path, "verify", "a table")
    config = build(VerifyConfig, tuples(section), lambda f: _key(f"verify.{f}"), str(path))
    for isa in sorted({p.verify_isa for p in profiles.values() if p.verify_isa}):
        try:
            cpu_names(isa, config.cpus)
        except UserError as err:
            raise UserError(f"{path}: {_key('verify.cpus')}: {err}") from None
    return config


def read_recipe_toml(path: Path) -> dict:
    """The recipe file's TOML as a dict; UserError for a missing file or bad TOML."""
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None


def load_recipe(path: Path) -> Recipe:
    """Parse and validate a recipe file; raises UserError naming the file and the key."""
    return parse_recipe(path, read_recipe_toml(path))


def parse_recipe(path: Path, data: dict) -> Recipe:
    """A recipe from its TOML table (paths relative to `path`); a [search] table is the search
    command's and does not change the run."""
    from edgecompress.compress.pipeline.llm_plan import is_llm_model, llm_recipe_fields

    if isinstance(data.get("model"), str) and data["model"].strip() \
            and is_llm_model(resolve_relative(path, data["model"])):
        # a decoder LM: its own keys and plan (llm_plan.py)
        return Recipe(**llm_recipe_fields(path, data, resolve_relative, _check_keys, _targets))
    _check_keys(path, "recipe", data, TOP_KEYS)
    _check_rounds(path, data)
    targets, profiles = _targets(path, data)
    stages = []
    for stage in STAGE_ORDER:
        if stage in data:
            settings = _resolve_settings(path, stage, data[stage]) \
                if isinstance(data[stage], dict) else data[stage]
            stage_config(str(path), stage, _without_rounds(stage, settings))  # now, not later
            stages.append((stage, json.dumps(settings, sort_keys=True)))
    schemes, max_drop = _quantize(path, data, profiles)
    runs, warmup = _bench(path, data)
    dataset = _dataset(path, data)
    stages = [(name, _with_corpus_columns(name, settings, dataset))
              for name, settings in stages]
    return Recipe(name=data.get("name") or path.stem,
                  model=resolve_relative(path, _string(path, data, "model")),
                  **dataset,
                  targets=targets, stages=tuple(stages), schemes=schemes, max_drop=max_drop,
                  bench_runs=runs, bench_warmup=warmup, source=str(path),
                  label_map=_label_map(path, data), verify=_verify(path, data, profiles))
