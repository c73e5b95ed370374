"""Vocabulary pruning: keep the tokens a domain corpus uses, shrink the embedding to match,
and write a tokenizer whose ids are the new rows.

Kept: every token the corpus (train split) tokenizes to, the special tokens, and what the
tokenizer's kind needs so that every text still encodes (single characters, bytes, the unknown
token; vocab_tokenizers.py says which and why per kind). Text whose original tokenization uses
only kept tokens tokenizes to the same tokens, so the pruned tokenizer + model give the same
logits on it. WordPiece, byte-level BPE and Unigram (SentencePiece) tokenizers are pruned.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from edgecompress.compress.models.loading import LoadedModel
from edgecompress.compress.prune.surgery import keep_embedding_rows
from edgecompress.compress.prune.vocab_tokenizers import (
    model_vocab,
    renumbered,
    required_ids,
    tokenizer_kind,
)
from edgecompress.errors import UserError

# Files a saved tokenizer may carry next to tokenizer.json whose ids would disagree with it.
_STALE = ("vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "*.model")
_KIND_NAMES = {"WordPiece": "WordPiece", "BPE": "byte-level BPE", "Unigram": "Unigram"}


def corpus_texts(spec: str, text_col: str | None = None) -> tuple[str, ...]:
    """Sentences of a .txt file (one a line), or the train split of a dataset name / CSV / JSONL,
    read from column `text_col` (None: `text`; a recipe passes its dataset's column when the
    corpus is its dataset's file).

    Raises UserError when there is no text, or a column is named for a .txt file or a file
    that lacks it.
    """
    path = Path(spec)
    if path.suffix == ".txt":
        if text_col is not None:
            raise UserError(f"vocabulary corpus {path}: a .txt file has no columns (one text a "
                            f"line), so no text column {text_col!r}")
        if not path.is_file():
            raise UserError(f"vocabulary corpus not found: {path}")
        texts = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    else:
        from edgecompress.compress.data.datasets import load_dataset

        try:
            texts = load_dataset(spec, text_col=text_col).split("train").texts
        except UserError as err:
            raise UserError(f"vocabulary corpus: {err}") from None
    texts = tuple(t for t in texts if t.strip())
    if not texts:
        raise UserError(f"vocabulary corpus {spec} has no text")
    return texts


def corpus_token_ids(tokenizer, texts) -> list[int]:
    """Sorted ids of the special tokens and of every token `texts` tokenize to."""
    ids = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 1024):
        encoded = tokenizer(list(texts[start:start + 1024]), add_special_tokens=False)
        for row in encoded["input_ids"]:
            ids.update(row)
    return sorted(ids)


def tokenizer_data(tokenizer) -> dict:
    """The tokenizer's tokenizer.json as a dict; UserError for a kind that cannot be pruned."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("vocabulary pruning needs a fast tokenizer (a tokenizer.json)")
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    tokenizer_kind(data)
    return data


def pruned_tokenizer(tokenizer, keep_ids: list[int]):
    """A tokenizer over only `keep_ids` (from `required_ids`); old id keep_ids[k] becomes k.

    Raises UserError for a tokenizer kind that is not pruned, or one that does not reload as
    written (its class rebuilds the tokenizer differently).
    """
    from transformers import AutoTokenizer

    data = renumbered(tokenizer_data(tokenizer), keep_ids)
    with tempfile.TemporaryDirectory(prefix="edgecompress-vocab-") as tmp:
        folder = Path(tmp)
        tokenizer.save_pretrained(tmp)
        for pattern in _STALE:
            for stale in folder.glob(pattern):
                stale.unlink()
        (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False),
                                               encoding="utf-8")
        new_id = {old: new for new, old in enumerate(keep_ids)}
        _renumber_config(folder / "tokenizer_config.json", new_id)
        pruned = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    _check_reloaded(pruned, data)
    return pruned


def _renumber_config(path: Path, new_id: dict[int, int]) -> None:
    """Ids tokenizer_config.json may hold (added tokens by id, DeBERTa-v2's unk_id)."""
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    decoder = config.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        config["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in decoder.items()
                                          if int(k) in new_id}
    if isinstance(config.get("unk_id"), int) and config["unk_id"] in new_id:
        config["unk_id"] = new_id[config["unk_id"]]
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def _check_reloaded(tokenizer, data: dict) -> None:
    """Transformers classes rebuild a tokenizer from its vocabulary (fixed unk ids, their own
    pre-tokenizer): refuse one whose rebuilt vocabulary or unknown id differ from what we wrote."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    same = (model_vocab(model) == model_vocab(data["model"])
            and model.get("unk_id") == data["model"].get("unk_id")
            and len(model.get("merges") or ()) == len(data["model"].get("merges") or ()))
    if not same:
        raise UserError(f"{type(tokenizer).__name__} does not reload a pruned vocabulary "
                        "consistently; vocabulary pruning cannot shrink this tokenizer")


def prune_vocabulary(loaded: LoadedModel, texts) -> tuple[LoadedModel, dict]:
    """Shrink the embedding and tokenizer to the tokens of `texts`.

    Returns (the model with its new tokenizer, a JSON-ready summary). The module is edited in
    place. Raises UserError for an empty corpus or a tokenizer kind that is not pruned.
    """
    if not texts:
        raise UserError("vocabulary corpus is empty")
    before = len(loaded.tokenizer)
    data = tokenizer_data(loaded.tokenizer)  # first: refuses before any work
    keep = required_ids(data, corpus_token_ids(loaded.tokenizer, texts))
    tokenizer = pruned_tokenizer(loaded.tokenizer, keep)  # before surgery: it may refuse too
    keep_embedding_rows(loaded, keep)
    summary = {"corpus_sentences": len(texts), "tokenizer": _KIND_NAMES[tokenizer_kind(data)],
               "vocab_before": before, "vocab_after": len(keep), "removed": before - len(keep)}
    return dataclasses.replace(loaded, tokenizer=tokenizer), summary
