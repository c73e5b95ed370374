"""A recipe as a plan: the ordered steps a run takes, each a registered stage with its frozen
config, the named inputs it reads (a path, a built-in name, or an earlier step's output) and the
folder it writes. The run loop (runs.py) and `run --dry-run` walk the same list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from edgecompress.compress.pipeline.recipe import ROUNDS_KEY, SPLIT_FRACTIONS, Recipe
from edgecompress.compress.pipeline.target_stages import (
    BenchConfig,
    EvalConfig,
    VerifyStageConfig,
)
from edgecompress.errors import UserError
from edgecompress.rundir import RunDir

STEP_OUTPUT = "@"  # an input written "@prune" is the output of step "prune"
VOCAB_KEYS = ("vocab_corpus", "vocab_corpus_text_col")  # [prune] keys of the vocabulary step


@dataclass(frozen=True)
class Step:
    id: str  # unique within a run: "prune", "export-x86-cpu", ...
    stage: str  # a key of stages.STAGES
    config: object  # the stage's frozen config
    inputs: tuple[tuple[str, str], ...]  # (name, path / built-in name / "@step")
    out_dir: Path
    target: str | None = None  # the profile name, for target steps


def _ref(step_id: str) -> str:
    return STEP_OUTPUT + step_id


def training_steps(recipe: Recipe, run_dir: Path) -> tuple[list[Step], str, str]:
    """(steps, reference to the final model, reference to the fp32 teacher).

    Vocabulary pruning moves after distillation: it needs no recovery (accuracy unchanged
    within the CI on RT) and teacher and student must share a vocabulary while one learns from
    the other. `[prune] rounds = N` turns prune + distill into N of each (round_settings)."""
    from edgecompress.compress.pipeline.recipe import build_stage_config

    steps, current, teacher = [], recipe.model, recipe.model
    prune = recipe.settings("prune") or {}
    vocab_later = bool(recipe.settings("distill")) and bool(prune.get("vocab_corpus"))
    vocab = {k: v for k, v in prune.items() if k in VOCAB_KEYS}  # the corpus and its column
    for step_id, name, settings in _stage_steps(recipe):
        if name == "prune" and vocab_later:
            settings = {k: v for k, v in settings.items() if k not in VOCAB_KEYS}
        config = build_stage_config(recipe, name, settings)
        inputs = (("teacher", teacher), ("student", current)) if name == "distill" \
            else (("model", current),)
        steps.append(Step(step_id, name, config, inputs, RunDir(run_dir).stage_dir(step_id)))
        current = _ref(step_id)
        teacher = current if name == "finetune" else teacher
    if vocab_later:
        config = build_stage_config(recipe, "prune", vocab)
        steps.append(Step("vocab", "vocab", config, (("model", current),),
                          RunDir(run_dir).stage_dir("vocab")))
        current = _ref("vocab")
    return steps, current, teacher


def _stage_steps(recipe: Recipe) -> list[tuple[str, str, dict]]:
    """(step id, stage, settings) of the recipe's training stages in run order, prune and
    distill repeated per round."""
    out = []
    for name, _ in recipe.stages:
        if name == "distill" and prune_rounds(recipe) > 1:
            continue  # with its prune round
        if name == "prune" and prune_rounds(recipe) > 1:
            out += round_settings(recipe.settings("prune"), recipe.settings("distill"))
            continue
        out.append((name, name, recipe.settings(name)))  # build_stage_config drops `rounds`
    return out


FIRST_ROUND_ONLY = ("keep_layers", "drop_heads")  # they number the recipe model's layers
QAT_KEYS = ("qat_target", "qat_scheme")  # fake quantization trains the final student only


def prune_rounds(recipe: Recipe) -> int:
    return int((recipe.settings("prune") or {}).get(ROUNDS_KEY, 1))


def round_settings(prune: dict, distill: dict) -> list[tuple[str, str, dict]]:
    """Prune and distill in rounds (as CoFi and Sheared-LLaMA prune gradually rather than in one
    cut): round k of N cuts the heads / FFN / layer fractions linearly, to k/N of the recipe's
    total (each round's fraction is of what the previous round left), and distils the result
    from the teacher. The [distill.train] epochs are split over the rounds, the remainder to the
    last, so N rounds cost about the training of one cut. Layer choices by number
    (keep_layers, drop_heads) apply in round 1; QAT in the last round. The last round keeps the
    step ids "prune" and "distill"; earlier ones are "prune-round1", "distill-round1", ..."""
    from edgecompress.compress.distill.config import DISTILL_TRAIN
    from edgecompress.rundir import ROUND_MARK

    rounds = int(prune[ROUNDS_KEY])
    train = distill.get("train") or {}
    epochs = int(train.get("epochs", DISTILL_TRAIN.epochs))
    out = []
    for k in range(1, rounds + 1):
        last = k == rounds
        cut = {key: v for key, v in prune.items() if key != ROUNDS_KEY
               and (k == 1 or key not in FIRST_ROUND_ONLY)}
        for key in SPLIT_FRACTIONS:
            if prune.get(key):
                total = float(prune[key])
                done = total * (k - 1) / rounds  # of the recipe model, removed before round k
                cut[key] = round(total / rounds / (1 - done), 6)
        share = epochs - (rounds - 1) * (epochs // rounds) if last else epochs // rounds
        recover = {key: v for key, v in distill.items() if last or key not in QAT_KEYS}
        recover["train"] = {**train, "epochs": share}
        suffix = "" if last else f"{ROUND_MARK}{k}"
        out += [(f"prune{suffix}", "prune", cut), (f"distill{suffix}", "distill", recover)]
    return out


def target_spec(profile) -> str:
    """How a step's config names its target: a built-in profile by name, so the identity does
    not depend on where the package is installed (the profile's bytes are an input digest of
    their own); a user's profile file by its path."""
    from edgecompress.targets.profiles import PROFILE_DIR

    builtin = profile.source is None or Path(profile.source).parent == PROFILE_DIR
    return profile.name if builtin else str(profile.source)


def target_steps(recipe: Recipe, run_dir: Path, final: str, profile) -> list[Step]:
    """export, eval, verify (on its own CPU kernels, emulated: when its profile sets verify_isa
    and the recipe's [verify] is enabled) and bench of one target, in that order."""
    from edgecompress.compress.quantize.stage import QuantizeConfig

    target = target_spec(profile)
    folder = RunDir(run_dir).artifact_dir(profile.name)
    export_id, name = f"export-{profile.name}", profile.name
    quantize = QuantizeConfig(target=target, scheme=profile.scheme,
                              max_drop=recipe.max_drop_for(profile.name))
    steps = [
        Step(export_id, "export", quantize, (("model", final),), folder, name),
        Step(f"eval-{name}", "eval", EvalConfig(), (("model", _ref(export_id)),
                                                     ("reference", _ref("eval-teacher"))),
             folder, name),
    ]
    if profile.verify_isa and recipe.verify.enabled:  # before bench: a refused one is not timed
        from edgecompress.compress.evaluation.verify import cpu_names

        config = VerifyStageConfig(target, profile.scheme, profile.verify_isa, recipe.verify.rows,
                                   cpu_names(profile.verify_isa, recipe.verify.cpus))
        steps.append(Step(f"verify-{name}", "verify", config, (("model", _ref(export_id)),),
                          folder, name))
    return steps + [Step(f"bench-{name}", "bench",
                         BenchConfig(target, recipe.bench_runs, recipe.bench_warmup),
                         (("model", _ref(export_id)),), folder, name)]


def plan_steps(recipe: Recipe, run_dir: Path) -> list[Step]:
    """Every step of `recipe` in run order. Raises UserError for a bad target or config."""
    if recipe.llm is not None:
        return llm_plan_steps(recipe, run_dir)
    steps, final, teacher = training_steps(recipe, run_dir)
    steps.append(Step("eval-teacher", "eval", EvalConfig(), (("model", teacher),),
                      RunDir(run_dir).teacher))
    for target in recipe.targets:
        steps += target_steps(recipe, run_dir, final, profile_for(recipe, target))
    return steps


def profile_for(recipe: Recipe, target: str):
    """The target's profile with the recipe's scheme override applied (validated by Profile)."""
    from edgecompress.targets import load_profile

    profile = load_profile(target)
    scheme = recipe.scheme_for(profile.name)
    if scheme is None or scheme == profile.scheme:
        return profile
    try:
        return dataclasses.replace(profile, scheme=scheme)
    except ValueError as err:
        raise UserError(f"{recipe.source}: quantize.schemes.{profile.name}: {err}") from None


def llm_plan_steps(recipe, run_dir: Path) -> list:
    """Every step of an LLM recipe in run order: prune, distill (the recipe's model teaches),
    then per target export, eval and bench."""
    from edgecompress.compress.pipeline.llm_plan import (
        LLMBenchStepConfig,
        LLMEvalConfig,
        LLMExportConfig,
        llm_profile,
        stage_config,
        tokenizer_file,
    )

    run, steps, current = RunDir(run_dir), [], recipe.model
    for name, _ in recipe.stages:
        inputs = (("teacher", recipe.model), ("student", current)) if name == "distill" \
            else (("model", current),)
        steps.append(Step(name, f"llm-{name}", stage_config(recipe, name), inputs,
                          run.stage_dir(name)))
        current = _ref(name)
    for target in recipe.targets:
        profile = llm_profile(recipe, target)
        spec, folder, export_id = target_spec(profile), run.artifact_dir(profile.name), \
            f"export-{profile.name}"
        threads = tuple(sorted({1, profile.threads}))
        tokenizer = tokenizer_file(recipe, profile)
        vocab = (("vocab_from", tokenizer),) if tokenizer else ()
        steps += [
            Step(export_id, "llm-export", LLMExportConfig(spec, profile.scheme),
                 (("model", current),) + vocab, folder, profile.name),
            Step(f"eval-{profile.name}", "llm-eval", LLMEvalConfig(recipe.llm.eval),
                 (("model", _ref(export_id)), ("reference", recipe.model)), folder,
                 profile.name),
            Step(f"bench-{profile.name}", "llm-bench",
                 LLMBenchStepConfig(spec, recipe.llm.bench, threads),
                 (("model", _ref(export_id)),), folder, profile.name),
        ]
    return steps
