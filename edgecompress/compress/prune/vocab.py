"""Vocabulary pruning: keep the wordpieces a domain corpus uses, shrink the embedding to match,
and write a tokenizer whose ids are the new rows.

Kept: every token the corpus (train split) tokenizes to, the special tokens, and the single ASCII
characters with their "##" forms, so a word outside the corpus still splits into kept pieces
before it falls back to [UNK]. WordPiece picks the longest matching piece first, so text whose
original tokenization uses only kept pieces tokenizes to the same pieces, and the pruned
tokenizer + model give the same logits on it. Only WordPiece (BERT-family) tokenizers are pruned.
"""

from __future__ import annotations

import dataclasses
import json
import string
import tempfile
from pathlib import Path

from edgecompress.compress.core.models import LoadedModel
from edgecompress.compress.prune.surgery import keep_embedding_rows
from edgecompress.errors import UserError

_ASCII = string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation


def corpus_texts(spec: str) -> tuple[str, ...]:
    """Sentences of a .txt file (one a line), or the train split of a dataset name / CSV / JSONL.

    Raises UserError when there is no text.
    """
    path = Path(spec)
    if path.suffix == ".txt":
        if not path.is_file():
            raise UserError(f"vocabulary corpus not found: {path}")
        texts = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    else:
        from edgecompress.compress.core.data import load_dataset

        texts = load_dataset(spec).split("train").texts
    texts = tuple(t for t in texts if t.strip())
    if not texts:
        raise UserError(f"vocabulary corpus {spec} has no text")
    return texts


def corpus_token_ids(tokenizer, texts, keep_chars: bool = True) -> list[int]:
    """Sorted ids to keep: corpus tokens, special tokens, optionally single ASCII characters."""
    ids = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 1024):
        encoded = tokenizer(list(texts[start:start + 1024]), add_special_tokens=False)
        for row in encoded["input_ids"]:
            ids.update(row)
    if keep_chars:
        vocab = tokenizer.get_vocab()
        ids.update(vocab[p] for c in _ASCII for p in (c, f"##{c}") if p in vocab)
    return sorted(ids)


def pruned_tokenizer(tokenizer, keep_ids: list[int]):
    """A tokenizer over only `keep_ids`; old id keep_ids[k] becomes k.

    Raises UserError for a tokenizer that is not WordPiece.
    """
    from transformers import AutoTokenizer

    data = json.loads(tokenizer.backend_tokenizer.to_str())
    if data["model"]["type"] != "WordPiece":
        raise UserError(f"vocabulary pruning supports WordPiece tokenizers, not "
                        f"{data['model']['type']}")
    new_id = {old: new for new, old in enumerate(keep_ids)}
    vocab = data["model"]["vocab"]  # token -> old id
    data["model"]["vocab"] = {tok: new_id[i] for tok, i in vocab.items() if i in new_id}
    for token in data.get("added_tokens") or []:
        if token["id"] not in new_id:
            raise UserError(f"special token {token['content']!r} must stay in the vocabulary")
        token["id"] = new_id[token["id"]]
    specials = (data.get("post_processor") or {}).get("special_tokens", {})
    for entry in specials.values():
        entry["ids"] = [new_id[i] for i in entry["ids"]]
    if data.get("padding"):
        data["padding"]["pad_id"] = new_id[data["padding"]["pad_id"]]
    with tempfile.TemporaryDirectory(prefix="edgecompress-vocab-") as tmp:
        tokenizer.save_pretrained(tmp)
        for stale in ("vocab.txt",):  # a slow-tokenizer vocab would disagree with the new ids
            (Path(tmp) / stale).unlink(missing_ok=True)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
        return AutoTokenizer.from_pretrained(tmp, local_files_only=True)


def prune_vocabulary(loaded: LoadedModel, texts) -> tuple[LoadedModel, dict]:
    """Shrink the embedding and tokenizer to the tokens of `texts`.

    Returns (the model with its new tokenizer, a JSON-ready summary). The module is edited in
    place. Raises UserError for an empty corpus or a non-WordPiece tokenizer.
    """
    if not texts:
        raise UserError("vocabulary corpus is empty")
    before = len(loaded.tokenizer)
    keep = corpus_token_ids(loaded.tokenizer, texts)
    tokenizer = pruned_tokenizer(loaded.tokenizer, keep)  # first: refuses before any surgery
    keep_embedding_rows(loaded, keep)
    summary = {"corpus_sentences": len(texts), "vocab_before": before, "vocab_after": len(keep),
               "removed": before - len(keep)}
    return dataclasses.replace(loaded, tokenizer=tokenizer), summary
