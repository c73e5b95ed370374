"""Checks of a recipe's inputs before a run writes anything: the model's config, its encoder
family, the targets and the dataset (columns, classes and sizes per split), as `run --dry-run`
prints them."""

from __future__ import annotations

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
        lines += _family_lines(recipe) + _target_lines(recipe)
        data = recipe.data().load()
        return lines + _dataset_lines(recipe, data, task, labels)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None


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
                            f"target {profile.name} ({profile.format}); give max_drop per "
                            f"target, e.g. max_drop = {{ \"x86-cpu\" = 1.0 }}")
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
