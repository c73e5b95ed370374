"""Checks of a recipe's inputs before a run writes anything: the model's config, its encoder
family, the targets, the dataset (columns, classes and sizes per split), every stage value a
later step reads (layer numbers, students, the vocabulary corpus and its column) and the output
folder (writable, room, free of another run), as `run --dry-run` prints them. A run does the
same checks, then writes. A decoder LM's recipe has its own (`llm_checks`)."""

from __future__ import annotations

from pathlib import Path

from edgecompress.compress.pipeline.recipe import Recipe
from edgecompress.errors import UserError


def validate_inputs(recipe: Recipe, *, fetch: bool = True) -> list[str]:
    """Check the recipe's model and dataset before a run writes anything; returns summary lines.

    Reads the model's config, not its weights (supported architecture, tokenizer files, labels)
    and the dataset (columns, labels, classes and sizes per split); a registry dataset not yet
    fetched is skipped when `fetch` is False (as `run --dry-run` does). Raises UserError naming
    the recipe and the problem.
    """
    from edgecompress.compress.data.datasets import needs_fetch
    from edgecompress.compress.models.loading import checkpoint_labels

    where = recipe.source or recipe.name
    try:
        task, labels = checkpoint_labels(recipe.model)
        lines = [f"model {recipe.model}: {task}" + (f", labels {', '.join(labels)}" if labels
                                                    else "")]
        if not fetch and needs_fetch(recipe.dataset):
            return lines + [f"dataset {recipe.dataset}: not fetched yet (the run fetches it)"]
        lines += _family_lines(recipe) + _target_lines(recipe) + _stage_value_lines(recipe)
        lines += _corpus_lines(recipe, fetch)
        data = recipe.data().load()
        return lines + _dataset_lines(recipe, data, task, labels)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None


def _depth(model: str) -> int | None:
    """Encoder layers of `model`, from its config (None: not known without loading it)."""
    from edgecompress.compress.models.arch import FAMILIES
    from edgecompress.compress.models.modules import (
        PLAIN_CONFIG,
        read_config_object,
        resolve_model_path,
    )

    path = resolve_model_path(model)
    if (path / "config.json").is_file():
        config = read_config_object(path / "config.json")
        family = FAMILIES.get(config.get("model_type"))
        value = config.get(family.layer_count) if family else None
    else:
        value = len(read_config_object(path / PLAIN_CONFIG).get("heads") or ()) or None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stage_value_lines(recipe: Recipe) -> list[str]:
    """Refuse now the stage values that name layers the model lacks ([prune] keep_layers /
    drop_heads, [distill] student = "layers:..") or a student checkpoint that is not one: the
    steps that read them run after fine-tuning, minutes or hours in. Every training stage
    keeps the recipe model's depth until [prune] cuts it, and a "layers:" student is cut from
    the teacher, so all of them number the recipe model's layers."""
    from edgecompress.compress.models.loading import checkpoint_labels
    from edgecompress.compress.pipeline.recipe import build_stage_config

    named = []
    if recipe.settings("prune") is not None:  # parsed as the step will have it
        prune = build_stage_config(recipe, "prune", recipe.settings("prune"))
        named += [("prune.keep_layers", i) for i in prune.keep_layers or ()]
        named += [("prune.drop_heads", layer) for layer, _ in prune.drop_heads]
    student = (recipe.settings("distill") or {}).get("student", "pruned")
    if student.startswith("layers:"):
        named += [("distill.student", int(i)) for i in student[7:].split(",") if i.strip()]
    elif student != "pruned" and not student.startswith("fresh:"):
        try:
            checkpoint_labels(student)
        except UserError as err:
            raise UserError(f"key 'distill.student': {err}") from None
    depth = _depth(recipe.model) if named else None
    for key, layer in named:
        if depth is not None and layer >= depth:
            raise UserError(f"key '{key}': layer {layer} does not exist: {recipe.model} has "
                            f"layers 0..{depth - 1}")
    return []


def _corpus_lines(recipe: Recipe, fetch: bool) -> list[str]:
    """The vocabulary corpus, read as its step will read it (its file, its text column), so a
    missing file or column is refused now and not after fine-tuning and distillation."""
    from edgecompress.compress.data.datasets import needs_fetch
    from edgecompress.compress.prune.vocab import corpus_texts

    prune = recipe.settings("prune") or {}
    corpus, column = prune.get("vocab_corpus"), prune.get("vocab_corpus_text_col")
    if not corpus:
        return []
    if not fetch and needs_fetch(corpus):
        return [f"vocabulary corpus {corpus}: not fetched yet (the run fetches it)"]
    try:
        texts = corpus_texts(corpus, column)
    except UserError as err:
        raise UserError(f"key 'prune.vocab_corpus': {err}") from None
    return [f"vocabulary corpus {corpus}: {len(texts)} texts"
            + (f" (column {column!r})" if column else "")]


# Room a run needs in its folder, in multiples of the recipe model's files. Why: each training
# step ([prune] and [distill], once per round, and the vocabulary step that follows [distill]:
# plan.py) writes a checkpoint no larger than the model in fp32; each target writes an artifact
# no larger than fp32 and, while exporting, its fp32 export beside the quantized one (2 per
# target); the step being written atomically sits beside the copy it replaces (1 more). The
# fine-tuned teacher goes to the cache, not here.
def run_output_bytes(recipe: Recipe) -> int:
    """Bytes a run of `recipe` may write into its folder (see the rule above)."""
    from edgecompress.compress.models.modules import resolve_model_path
    from edgecompress.compress.pipeline.plan import prune_rounds
    from edgecompress.fsutil import files_bytes

    steps = sum(1 for name, _ in recipe.stages if name != "finetune")
    steps += 2 * (prune_rounds(recipe) - 1)  # each earlier round: a prune and a distill
    steps += bool(recipe.settings("distill")) and bool((recipe.settings("prune") or {})
                                                        .get("vocab_corpus"))
    return files_bytes(resolve_model_path(recipe.model)) * (steps + 2 * len(recipe.targets) + 1)


def output_lines(recipe: Recipe, out: Path, *, force: bool) -> list[str]:
    """Check the run folder before anything is written: not refused as another tool's folder,
    writable (probed), room for the run's artifacts (run_output_bytes); returns the line."""
    from edgecompress.compress.pipeline.runs import check_run_dir
    from edgecompress.fsutil import check_output_room

    check_run_dir(out, force)
    need = run_output_bytes(recipe)
    check_output_room(out, need)
    return [f"output {out}: writable, about {need / 1e6:.1f} MB needed"]


# [prune] keys that cut layers, heads, FFN neurons or weights (everything but the vocabulary)
STRUCTURE_KEYS = {"heads", "ffn", "layers", "keep_layers", "drop_heads", "target_params",
                  "target_mb", "sparsity", "nm"}


def _family_lines(recipe: Recipe) -> list[str]:
    """The model's encoder family; refuses a [prune] table for a family that cannot be cut."""
    from edgecompress.compress.models.arch import FAMILIES
    from edgecompress.compress.models.modules import read_config_object, resolve_model_path

    path = resolve_model_path(recipe.model)
    if not (path / "config.json").is_file():
        return []  # a plain encoder: every stage applies
    family = FAMILIES[read_config_object(path / "config.json")["model_type"]]
    cuts = set(recipe.settings("prune") or {}) & STRUCTURE_KEYS
    if cuts and family.prunable:  # the vocabulary alone can still be pruned
        raise UserError(f"[prune] {sorted(cuts)[0]}: cannot prune {family.name}: "
                        f"{family.prunable}")
    return [f"family {family.name}" + (f" ({family.quirks})" if family.quirks else "")]


def _target_lines(recipe: Recipe) -> list[str]:
    """Per target: format, scheme (the recipe's override or the profile's) and runtime."""
    from edgecompress.targets import load_profile
    from edgecompress.targets.extras import require

    lines = []
    for target in recipe.targets:
        profile = load_profile(target)
        require(profile.format, f"target {profile.name}")  # an optional extra (ExecuTorch)
        if not profile.keeps_float_layers and recipe.max_drop_for(profile.name) is not None:
            raise UserError(f"[quantize] max_drop: the accuracy fallback is not available for "
                            f"target {profile.name} ({profile.float_layers_refusal}); give "
                            f"max_drop per target, e.g. max_drop = {{ \"x86-cpu\" = 1.0 }}")
        scheme = recipe.scheme_for(profile.name) or profile.scheme
        lines.append(f"target {profile.name}: {profile.format} {scheme} on {profile.runtime}, "
                     f"{profile.threads} thread(s)"
                     + (", integer-only preflight" if profile.integer_only else ""))
    return lines


def _dataset_lines(recipe: Recipe, data, task: str, labels: tuple[str, ...]) -> list[str]:
    """The dataset's splits and classes as the recipe's steps will read them."""
    from edgecompress.compress.data.labels import align_labels

    if data.task != "classification":
        return [f"dataset {data.name}: {data.task}, {len(data.split('test'))} documents"]
    if not data.labels:
        raise UserError(f"dataset {data.name} has no labels (a 'label' column)")
    trains = any(recipe.settings(stage) is not None for stage in ("finetune", "distill"))
    for name in ("train", "dev", "test") if trains else ("test",):
        if not len(data.split(name)):
            raise UserError(f"dataset {data.name} has an empty {name} split")
    if recipe.settings("finetune") is None:
        if task != "classification":
            raise UserError(f"model {recipe.model} has no classification head; add a "
                            "[finetune] table to train one")
        data = align_labels(data, labels, recipe.label_map)
    lines = [data.split_line()]
    for name, split in data.splits.items():
        counts = [sum(1 for y in split.labels or () if y == i) for i in range(len(data.labels))]
        lines.append(f"  {name}: " + ", ".join(f"{label} {n}" for label, n
                                               in zip(data.labels, counts)))
    if data.label_mapping:
        lines.append(f"labels matched to the model {data.label_mapping}")
    return lines


def llm_checks(recipe, out: Path, *, force: bool) -> list[str]:
    """Every check an LLM run makes before it writes anything; returns the lines `--dry-run`
    prints. The model is resolved (a registry model is fetched and converted once), its
    tokenizer and shape read, the cuts, contexts and targets checked against it (each
    target's converter preflight), the dataset's train and test splits read, the output
    folder probed. UserError names the recipe and the problem."""
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.load import read_lm_config, resolve_lm
    from edgecompress.compress.pipeline.llm_plan import llm_profile
    from edgecompress.compress.pipeline.runs import check_run_dir
    from edgecompress.fsutil import check_output_room, files_bytes
    from edgecompress.targets.extras import require

    try:
        path = resolve_lm(recipe.model)
        shape = shape_of(read_lm_config(path))
        lines = [f"model {recipe.model}: {shape.family}, {shape.layers} layers, "
                 f"{shape.heads}/{shape.kv_heads} heads, vocab {shape.vocab}"]
        lines += _llm_model_lines(recipe, path, shape) + _llm_text_lines(recipe)
        for target in recipe.targets:  # each target's optional extra, before prune / distill
            profile = llm_profile(recipe, target)
            require(profile.format, f"target {profile.name}")
    except UserError as err:
        raise UserError(f"{recipe.source or recipe.name}: {err}") from None
    check_run_dir(out, force)
    need = files_bytes(path) * (len(recipe.stages) + 2 * len(recipe.targets) + 1)
    check_output_room(out, need)
    return lines + [f"output {out}: writable, about {need / 1e6:.1f} MB needed"]


def _llm_model_lines(recipe, path: Path, shape) -> list[str]:
    """The cuts, contexts and targets of an LLM recipe against its model's `shape`."""
    from edgecompress.compress.config import FieldError
    from edgecompress.compress.llm.export import check_target
    from edgecompress.compress.pipeline.llm_plan import llm_profile, stage_config, tokenizer_file

    contexts, lines = [("eval.context", recipe.llm.eval.context)], []
    for name, _ in recipe.stages:
        config = stage_config(recipe, name)
        if name == "prune":
            try:
                config.check_model(shape)
            except FieldError as err:
                raise UserError(f"key 'prune.{err.field}': {err.message}") from None
        else:
            contexts.append(("distill.context", config.context))
    for key, context in contexts:
        if context > shape.context:
            raise UserError(f"key '{key}': {context} exceeds the model's context of "
                            f"{shape.context} tokens")
    for target in recipe.targets:
        profile = llm_profile(recipe, target)
        check_target(path, profile, vocab_from=tokenizer_file(recipe, profile))
        if profile.gate_context > shape.context:
            raise UserError(f"target {profile.name} gates on windows of {profile.gate_context} "
                            f"tokens; the model's context is {shape.context}")
        cache = profile.artifact_context
        bench = recipe.llm.bench
        for key, tokens in (("eval.context", recipe.llm.eval.context),
                            ("bench.prompt_lengths + new_tokens",
                             max(bench.prompt_lengths) + bench.new_tokens)):
            if cache is not None and tokens > cache:
                raise UserError(f"key '{key}': {tokens} tokens exceed target {profile.name}'s "
                                f"KV cache of {cache}")
        lines.append(f"target {profile.name}: {profile.format} {profile.scheme}, "
                     f"{profile.threads} threads")
    return lines


def _llm_text_lines(recipe) -> list[str]:
    """The splits an LLM recipe reads: present, and the training text never held out."""
    from edgecompress.compress.llm.distill import check_disjoint
    from edgecompress.compress.llm.sources import dataset_texts
    from edgecompress.compress.pipeline.llm_plan import EVAL_SPLIT, TRAIN_SPLIT

    texts = {split: dataset_texts(recipe.dataset, split)
             for split in ((TRAIN_SPLIT,) if recipe.stages else ()) + (EVAL_SPLIT,)}
    lines = []
    for split, found in texts.items():
        if not found:
            raise UserError(f"dataset {recipe.dataset} has no {split} texts")
        lines.append(f"dataset {recipe.dataset} {split}: {len(found)} texts")
    if TRAIN_SPLIT in texts:  # what distill and prune read shares nothing with what is scored
        check_disjoint(texts[TRAIN_SPLIT], texts[EVAL_SPLIT],
                       (f"{recipe.dataset} {TRAIN_SPLIT}", f"{recipe.dataset} {EVAL_SPLIT}"))
    return lines
