"""What happens to a dataset's text on its way into a model, said before any work and recorded
with the result: the rows longer than the model's max length in tokens (cut: the model sees only
their first tokens), per split, and the test rows whose text the training split already holds
(accuracy on those measures memory).

`run` and `run --dry-run` print `recipe_data_lines`; the eval step records `duplicates` (and
`truncated`: the same evaluation.evaluate.truncation, for the evaluated split) in eval.json,
which the report's Data section reads. Text is compared after `normalize`: Unicode NFKC,
case-folded, whitespace collapsed — "A  film." and "a film." are the same row.
"""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """The form two rows are compared in: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def split_truncation(dataset, tokenizer, max_length: int) -> dict[str, dict]:
    """`truncation` (plus "n", the split's rows) per non-empty split of a text dataset; {} for
    an image set."""
    if getattr(dataset, "modality", "text") != "text":
        return {}
    from edgecompress.compress.evaluation.evaluate import truncation

    return {name: {**truncation(tokenizer, split.texts, max_length), "n": len(split)}
            for name, split in dataset.splits.items() if len(split)}


def duplicates(dataset, split: str = "test", against: str = "train") -> dict | None:
    """{"split", "against", "rows", "n"}: rows of `split` whose normalized text is also in
    `against`; None when either split is missing or empty, or the examples are not text."""
    test, train = dataset.splits.get(split), dataset.splits.get(against)
    if getattr(dataset, "modality", "text") != "text" or not test or not train:
        return None
    seen = {normalize(text) for text in train.texts}
    rows = sum(normalize(text) in seen for text in test.texts)
    return {"split": split, "against": against, "rows": int(rows), "n": len(test)}


def truncation_line(per_split: dict[str, dict]) -> str | None:
    """'longer than 128 tokens, cut (the model sees their first 128): train 1,200 of 1,625
    (73.8%), ...' or None when there is nothing to say."""
    if not per_split:
        return None
    max_length = next(iter(per_split.values()))["max_length"]
    parts = [f"{name} {cut['rows']:,} of {cut['n']:,} ({cut['share']:.1%})" if cut["rows"]
             else f"{name} none of {cut['n']:,}" for name, cut in per_split.items()]
    return (f"rows longer than {max_length} tokens, cut (the model sees only their first "
            f"{max_length}): " + ", ".join(parts))


def duplicates_line(found: dict | None) -> str | None:
    """One line on the train/test overlap: a warning when there is one; None when unknown."""
    if found is None:
        return None
    if not found["rows"]:
        return (f"train/test overlap: none of the {found['n']:,} {found['split']} rows appears "
                f"in the {found['against']} split")
    return (f"warning: {found['rows']:,} of {found['n']:,} {found['split']} rows "
            f"({found['rows'] / found['n']:.1%}) also appear in the {found['against']} split "
            "(same text after lower-casing and collapsing spaces): on them accuracy measures "
            "memory, not generalisation")


def data_lines(dataset, tokenizer, max_length: int) -> list[str]:
    """The truncation line and the overlap line for a loaded dataset (those that apply)."""
    lines = [truncation_line(split_truncation(dataset, tokenizer, max_length)),
             duplicates_line(duplicates(dataset))]
    return [line for line in lines if line]


def overlap_warning(dataset, console) -> str | None:
    """Print (and return) the train/test overlap warning for a loaded dataset when its test split
    repeats training rows; nothing when it does not or cannot be known."""
    found = duplicates(dataset)
    if not found or not found["rows"]:
        return None
    line = duplicates_line(found)
    console.print(line, markup=False, highlight=False)
    return line


def recipe_data_lines(recipe) -> list[str]:
    """`data_lines` for a recipe (its model's tokenizer, its dataset, cut at its targets' input
    length); [] when the registry dataset is not fetched yet (a dry run fetches nothing). `run`
    checks them with the rest and prints them once its folder is locked; `--dry-run` prints
    them with its checks."""
    from edgecompress.compress.data.datasets import needs_fetch
    from edgecompress.compress.evaluation.artifacts import load_tokenizer
    from edgecompress.compress.models.modules import resolve_tokenizer_source
    from edgecompress.targets import load_profile

    data = recipe.data()
    if needs_fetch(data.spec):
        return []
    dataset = data.load()
    tokenizer = None
    if dataset.modality == "text":
        tokenizer = load_tokenizer(resolve_tokenizer_source(recipe.model))
    max_length = max(load_profile(target).seq_len for target in recipe.targets)
    return data_lines(dataset, tokenizer, max_length)
