"""`edgecompress search`: Optuna proposes trials, an executor runs them, the study remembers.

    <out>/spec.json     what makes this search this search (recipe, space, targets, budgets)
    <out>/study.db      the Optuna study (SQLite): a killed search resumes from it
    <out>/trials/NNNN/  each trial's recipe, log and result (trial.py)
    <out>/store/        every step's output, shared by the trials
    <out>/search.{json,md,html}, best.toml   what it found (summary.py)

Objectives: dev accuracy (maximize), p50 latency and size (minimize), averaged over the targets;
the budgets are Optuna constraints (TPE's constrained mode), three per target. The loop asks in
the main process and tells as results come back, so trials run anywhere the executor puts them.
A trial left running by a killed search is run again (its finished steps come from the store),
unless it had already written its result; finished trials are never repeated.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgecompress.compress.search.front import Budgets, constraints, objectives
from edgecompress.compress.search.space import SearchSpace, apply, parse_space
from edgecompress.compress.search.trial import read_result
from edgecompress.fsutil import atomic_write_json, check_replaceable, mark_output, read_json

DIRECTIONS = ("maximize", "minimize", "minimize")  # accuracy, p50 ms, MB
BUDGET_AXES = ("latency_ms", "size_mb", "max_drop")  # the order of front.constraints per target
PATH_KEYS = {"prune": "vocab_corpus", "distill": "student"}


@dataclass(frozen=True)
class SearchConfig:
    recipe: Path
    out: Path
    targets: tuple[str, ...] = ()  # () = the recipe's
    budgets: Budgets = field(default_factory=Budgets)
    trials: int = 20
    time_s: float | None = None
    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    seed: int = 0
    force: bool = False

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.time_s is not None and self.time_s <= 0:
            raise ValueError(f"time must be positive, got {self.time_s} s")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class Prepared:
    """The search's fixed part: the recipe table trials start from, its parsed recipe, space."""

    table: dict
    recipe: object
    space: SearchSpace
    targets: tuple[str, ...]  # profile names

    def identity(self, config: SearchConfig) -> dict:
        return {"kind": "edgecompress-search", "recipe": self.recipe.identity(),
                "space": self.space.to_json(), "budgets": dataclasses.asdict(config.budgets),
                "seed": config.seed}


def _absolute(path: Path, data: dict) -> dict:
    """The recipe table with its paths made absolute, so a trial's recipe works anywhere."""
    from edgecompress.compress.pipeline.recipe import resolve_relative

    data = json.loads(json.dumps(data))
    for key in ("model", "dataset"):
        if isinstance(data.get(key), str):
            data[key] = resolve_relative(path, data[key])
    table = data.get("dataset")
    if isinstance(table, dict) and isinstance(table.get("path"), str):
        table["path"] = resolve_relative(path, table["path"])
    for key in ("train", "dev", "test"):  # one file per split: always relative to the recipe
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = str((path.parent / table[key]).resolve())
    if isinstance(data.get("targets"), list):
        data["targets"] = [resolve_relative(path, t) if isinstance(t, str) else t
                           for t in data["targets"]]
    for section, key in PATH_KEYS.items():
        table = data.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            table[key] = resolve_relative(path, table[key])
    return data


def _only(table: dict | None, names: set[str]) -> dict | None:
    if not isinstance(table, dict):
        return table
    return {k: v for k, v in table.items() if k in names or k == "*"}


def _restrict(data: dict, targets: tuple[str, ...]) -> dict:
    """The recipe table searching only `targets` (their scheme / max_drop settings kept)."""
    from edgecompress.targets import load_profile

    names = {load_profile(t).name for t in targets}
    data = {**data, "targets": list(targets)}
    for holder in (data, data.get("search")):
        quantize = (holder or {}).get("quantize")
        if isinstance(quantize, dict):
            holder["quantize"] = {k: _only(v, names) if k in ("schemes", "max_drop") else v
                                  for k, v in quantize.items()}
    return data


def prepare(config: SearchConfig) -> Prepared:
    """Read and check the recipe and its [search] table; raises UserError naming the key."""
    from edgecompress.compress.pipeline.recipe import parse_recipe, read_recipe_toml

    data = _absolute(config.recipe, read_recipe_toml(config.recipe))
    if config.targets:
        data = _restrict(data, config.targets)
    table = {k: v for k, v in data.items() if k != "search"}
    recipe = parse_recipe(config.recipe, table)
    space = parse_space(config.recipe, data, parse_recipe)
    from edgecompress.targets import load_profile

    return Prepared(table, recipe, space, tuple(load_profile(t).name for t in recipe.targets))


def open_out(out: Path, identity: dict, force: bool) -> bool:
    """Make or reopen the search folder; True when it resumes an earlier run of this search."""
    spec = out / "spec.json"
    try:
        if spec.is_file() and read_json(spec) == identity:
            return True
    except ValueError:
        pass
    check_replaceable(out, force)
    if out.exists() and any(out.iterdir()):
        shutil.rmtree(out)  # only a marked edgecompress output gets here (check_replaceable)
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, "search")
    atomic_write_json(spec, identity)
    return False


def open_study(out: Path, config: SearchConfig):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE is constrained by the budgets through each trial's set_constraint values (tell)
    sampler = optuna.samplers.TPESampler(
        seed=config.seed, n_startup_trials=min(10, max(2, config.trials // 3)))
    study = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="search",
                                directions=list(DIRECTIONS), sampler=sampler,
                                load_if_exists=True)
    return study


def tell(study, trial, result: dict, prepared: Prepared, budgets: Budgets) -> None:
    """Record `result` on `trial` (an optuna Trial) and finish it in the study."""
    from optuna.trial import TrialState

    trial.set_user_attr("result", result)
    values = constraints(result, prepared.targets, budgets)
    trial.set_user_attr("constraints", values)
    if budgets.any():  # what TPE's constrained mode reads (<= 0: within the budgets)
        names = [f"{t}.{axis}" for t in prepared.targets for axis in BUDGET_AXES]
        for name, value in zip(names, values):
            trial.set_constraint(name, value)
    values = objectives(result) if result.get("state") == "complete" else None
    if values is not None:
        study.tell(trial, list(values))
    elif result.get("state") == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def recover(study, out: Path, prepared: Prepared, budgets: Budgets) -> int:
    """Trials a killed search left running: told from their result.json when they finished,
    otherwise failed and queued again with the same parameters. Returns how many were queued."""
    from optuna.trial import Trial, TrialState

    queued = 0
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        result = read_result(out, frozen.number)
        if result is not None:
            tell(study, Trial(study, frozen._trial_id), result, prepared, budgets)
            continue
        study.tell(frozen.number, state=TrialState.FAIL)
        carried = {"baseline": True} if frozen.user_attrs.get("baseline") else {}
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number, **carried})
        queued += 1
    return queued


def queue_baseline(study, prepared: Prepared) -> bool:
    """Queue the recipe's own settings as the first trial, so the search measures what it
    must beat in the same run; False when the recipe's values are outside the space."""
    params = prepared.space.baseline(prepared.table)
    if params is None:
        return False
    study.enqueue_trial(params, user_attrs={"baseline": True})
    return True


def baseline_trial(study) -> int | None:
    """The number of the trial that ran the recipe's own settings, if one did."""
    return next((t.number for t in study.get_trials(deepcopy=False)
                 if t.user_attrs.get("baseline") and "result" in t.user_attrs), None)


def finished(study) -> list:
    """Trials that count toward --trials: told with a result (complete, pruned or failed)."""
    return [t for t in study.get_trials(deepcopy=False) if "result" in t.user_attrs]


def trial_spec(trial, prepared: Prepared, config: SearchConfig, threads: int) -> dict:
    values = prepared.space.suggest(trial)
    return {"number": trial.number, "out": str(config.out.resolve()), "threads": threads,
            "recipe": apply(prepared.table, values), "max_drop": config.budgets.max_drop}


@dataclass
class Clock:
    """Time against --time: a trial starts only if the mean trial still fits."""

    limit_s: float | None
    began: float = field(default_factory=time.monotonic)
    durations: list = field(default_factory=list)
    driver_s: float = 0.0  # the loop's own time: asking, submitting, telling (not waiting)

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def room_for_one(self) -> bool:
        mean = sum(self.durations) / len(self.durations) if self.durations else 0.0
        return self.limit_s is None or self.elapsed() + mean <= self.limit_s


def run_trials(study, prepared: Prepared, config: SearchConfig, executor, display) -> Clock:
    """Ask, run and tell until --trials have finished or --time leaves no room for another."""
    clock, pending = Clock(config.time_s), {}
    from edgecompress.compress.search.executors import host_cpus

    threads = min(cpus_per_trial(prepared), host_cpus())
    try:
        while True:
            began = time.perf_counter()
            while (len(pending) < executor.workers and clock.room_for_one()
                   and len(finished(study)) + len(pending) < config.trials):
                trial = study.ask()
                pending[executor.submit(trial_spec(trial, prepared, config, threads))] = trial
            display.update(study, len(pending), clock)
            clock.driver_s += time.perf_counter() - began
            if not pending:
                return clock
            for handle in executor.wait(list(pending), timeout=1.0):
                trial = pending.pop(handle)
                result = _result(executor, handle, trial.number)
                began = time.perf_counter()
                clock.durations.append(result.get("seconds", 0.0))
                tell(study, trial, result, prepared, config.budgets)
                display.finished(result)
                clock.driver_s += time.perf_counter() - began
    finally:
        executor.close()


def _result(executor, handle, number: int) -> dict:
    try:
        return executor.result(handle)
    except Exception as err:  # a worker that died (killed, out of memory) fails its trial only
        return {"number": number, "state": "failed", "error": f"{type(err).__name__}: {err}"}


def cpus_per_trial(prepared: Prepared) -> int:
    """CPUs one trial uses: the most threads any target benchmarks with, and at least 2."""
    from edgecompress.targets import load_profile

    return max([2] + [load_profile(t).threads for t in prepared.recipe.targets])

