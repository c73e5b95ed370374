"""tokenizer.json surgery for vocabulary pruning: which ids a tokenizer must keep, and the same
tokenizer over only those ids (old id keep[k] becomes k).

Three kinds of model are pruned, each keeping what makes one property hold — a text whose
original tokens are all kept tokenizes to the same tokens — and what lets every text encode:

- WordPiece (BERT family) takes the longest matching piece first; in a subset that holds the
  original pieces they are still the longest. Single ASCII characters and their "##" forms stay,
  so an unseen word splits into pieces before it falls back to [UNK].
- Byte-level BPE (RoBERTa, GPT-2, ModernBERT) applies its merges in rank order. Every token a
  kept token is built from stays too (closure over the merges that make it), so each merge the
  original applied is still there and still the lowest-ranked one that applies. All 256 byte
  characters stay: any text still encodes, without an unknown token.
- Unigram (SentencePiece: XLM-R, ALBERT, DeBERTa-v2) takes the best-scoring segmentation; a
  subset that holds the original best keeps it best as long as the unknown-token penalty
  (lowest score - 10) is unchanged, so the lowest-scored piece stays. Single ASCII characters,
  their "▁" forms and the unknown token stay so every text encodes.

A BPE without a ByteLevel pre-tokenizer (SentencePiece-BPE with byte fallback, as in Llama) is
used by none of the supported encoder families and is refused, as is any other model type.
"""

from __future__ import annotations

import copy
import string

from edgecompress.errors import UserError

_ASCII = string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation
_SPACE = "▁"  # SentencePiece's word-start mark


def tokenizer_kind(data: dict) -> str:
    """"WordPiece", "BPE" (byte-level) or "Unigram" for a parsed tokenizer.json.

    Raises UserError for any other model, naming its type.
    """
    kind = data["model"].get("type")
    if kind == "BPE" and not _has_byte_level(data.get("pre_tokenizer")):
        raise UserError("vocabulary pruning supports WordPiece, byte-level BPE and Unigram "
                        "tokenizers, not BPE without a ByteLevel pre-tokenizer")
    if kind not in _EXTRAS:
        raise UserError(f"vocabulary pruning supports WordPiece, byte-level BPE and Unigram "
                        f"tokenizers, not {kind}")
    return kind


def _has_byte_level(node) -> bool:
    if not node:
        return False
    if node.get("type") == "Sequence":
        return any(_has_byte_level(part) for part in node.get("pretokenizers", ()))
    return node.get("type") == "ByteLevel"


def model_vocab(model: dict) -> dict[str, int]:
    """token -> id of a tokenizer.json model (Unigram lists [piece, score] in id order)."""
    if model["type"] == "Unigram":
        return {piece: i for i, (piece, _score) in enumerate(model["vocab"])}
    return dict(model["vocab"])


def required_ids(data: dict, ids) -> list[int]:
    """Sorted ids to keep: `ids` (corpus tokens), the ids special tokens and post-processing
    need, and what the model kind needs so every text encodes and kept text stays the same."""
    model = data["model"]
    keep = set(ids) | _pinned_ids(data)
    keep |= _EXTRAS[tokenizer_kind(data)](model, model_vocab(model), keep)
    return sorted(keep)


def _pinned_ids(data: dict) -> set[int]:
    """Special added tokens, the post-processor's tokens and the pad id."""
    pinned = {t["id"] for t in data.get("added_tokens") or [] if t.get("special")}
    pinned.update(_processor_ids(data.get("post_processor")))
    if data.get("padding"):
        pinned.add(data["padding"]["pad_id"])
    return pinned


def _processor_ids(node) -> set[int]:
    """Token ids inside a post-processor (Template, Roberta, Bert, or a Sequence of them)."""
    ids: set[int] = set()

    def record(i: int) -> int:
        ids.add(i)
        return i

    _remap_processor(node, record)
    return ids


def _remap_processor(node, remap) -> None:
    """Replace every token id `i` inside post-processor `node` by `remap(i)`, in place."""
    if not node:
        return
    kind = node.get("type")
    if kind == "Sequence":
        for part in node.get("processors", ()):
            _remap_processor(part, remap)
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):  # ["</s>", 2]
            node[key][1] = remap(node[key][1])
    elif kind == "TemplateProcessing":
        for entry in node.get("special_tokens", {}).values():
            entry["ids"] = [remap(i) for i in entry["ids"]]


def _wordpiece_extras(model: dict, vocab: dict[str, int], keep: set[int]) -> set[int]:
    prefix = model.get("continuing_subword_prefix", "##")
    return {vocab[p] for c in _ASCII for p in (c, prefix + c) if p in vocab}


def _bpe_extras(model: dict, vocab: dict[str, int], keep: set[int]) -> set[int]:
    from tokenizers.pre_tokenizers import ByteLevel

    extras = {vocab[c] for c in ByteLevel.alphabet() if c in vocab}
    return _merge_closure(model, vocab, keep | extras)


def _merge_closure(model: dict, vocab: dict[str, int], keep: set[int]) -> set[int]:
    """`keep` plus every token a kept token is merged from, recursively."""
    parts_of: dict[str, list[tuple[str, str]]] = {}
    for left, right in _merge_pairs(model):
        parts_of.setdefault(_merged(model, left, right), []).append((left, right))
    token_of = {i: t for t, i in vocab.items()}
    todo = [token_of[i] for i in keep if i in token_of]
    closed = set(keep)
    while todo:
        for pair in parts_of.pop(todo.pop(), ()):
            fresh = [p for p in pair if p in vocab and vocab[p] not in closed]
            closed.update(vocab[p] for p in fresh)
            todo.extend(fresh)
    return closed


def _merge_pairs(model: dict) -> list[tuple[str, str]]:
    """Merges as (left, right); tokenizer.json writes them as pairs or as "left right"."""
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def _merged(model: dict, left: str, right: str) -> str:
    prefix = model.get("continuing_subword_prefix") or ""
    return left + (right[len(prefix):] if prefix and right.startswith(prefix) else right)


def _unigram_extras(model: dict, vocab: dict[str, int], keep: set[int]) -> set[int]:
    pieces = [c for c in _ASCII] + [_SPACE + c for c in _ASCII] + [_SPACE]
    if model.get("byte_fallback"):
        pieces += [f"<0x{b:02X}>" for b in range(256)]
    extras = {vocab[p] for p in pieces if p in vocab}
    if model.get("unk_id") is not None:
        extras.add(model["unk_id"])
    scores = [score for _piece, score in model["vocab"]]
    extras.add(min(range(len(scores)), key=scores.__getitem__))  # keeps the unknown penalty
    return extras


_EXTRAS = {"WordPiece": _wordpiece_extras, "BPE": _bpe_extras, "Unigram": _unigram_extras}


def renumbered(data: dict, keep: list[int]) -> dict:
    """A copy of tokenizer.json `data` over only the sorted ids `keep` (old keep[k] -> k).

    Added tokens that are not kept are dropped; special ones are always kept (required_ids).
    """
    data = copy.deepcopy(data)
    new_id = {old: new for new, old in enumerate(keep)}
    _RENUMBER[tokenizer_kind(data)](data["model"], new_id)
    data["added_tokens"] = [t for t in data.get("added_tokens") or [] if t["id"] in new_id]
    for token in data["added_tokens"]:
        token["id"] = new_id[token["id"]]
    _remap_processor(data.get("post_processor"), new_id.__getitem__)
    if data.get("padding"):
        data["padding"]["pad_id"] = new_id[data["padding"]["pad_id"]]
    return data


def _renumber_mapping(model: dict, new_id: dict[int, int]) -> None:
    model["vocab"] = {tok: new_id[i] for tok, i in model["vocab"].items() if i in new_id}


def _renumber_bpe(model: dict, new_id: dict[int, int]) -> None:
    _renumber_mapping(model, new_id)
    kept = model["vocab"]
    model["merges"] = [m for m, (left, right) in zip(model["merges"], _merge_pairs(model))
                       if left in kept and right in kept and _merged(model, left, right) in kept]


def _renumber_unigram(model: dict, new_id: dict[int, int]) -> None:
    # A Unigram's ids are list positions: kept pieces in old order are exactly ids 0..n-1.
    model["vocab"] = [entry for i, entry in enumerate(model["vocab"]) if i in new_id]
    if model.get("unk_id") is not None:
        model["unk_id"] = new_id[model["unk_id"]]


_RENUMBER = {"WordPiece": _renumber_mapping, "BPE": _renumber_bpe, "Unigram": _renumber_unigram}
