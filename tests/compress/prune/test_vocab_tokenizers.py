"""Vocabulary pruning of byte-level BPE (RoBERTa) and Unigram (XLM-R, ALBERT, DeBERTa-v2)
tokenizers, each trained here on a fixed corpus (tests/models.py): same tokens and logits on text
the kept tokens cover, every text still encodes, a smaller model that saves and reloads."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
import torch

from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.arch import word_embedding
from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.prune.vocab import (
    corpus_token_ids,
    prune_vocabulary,
    pruned_tokenizer,
    tokenizer_data,
)
from edgecompress.compress.prune.vocab_tokenizers import renumbered, required_ids
from edgecompress.errors import UserError
from tests.compress.prune.conftest import logits
from tests.models import family_corpus, tiny_family

OWN = ("roberta", "xlm-roberta", "albert", "deberta-v2")
UNIGRAM = ("xlm-roberta", "albert", "deberta-v2")
CORPUS = family_corpus()[:40]
OUTSIDE = ("zebra crossing at 42 MPH!", "naïve café €42 東京 🎬", "  spaced \t out  ", "x")


@pytest.fixture(params=OWN)
def family(request):
    return request.param


def _recombined() -> list[str]:
    """New sentences from the corpus's words: their tokens are kept, the sentences are not."""
    rng = random.Random(1)
    words = " ".join(CORPUS).split()
    return [" ".join(rng.choice(words) for _ in range(8)) for _ in range(30)]


def _pieces(tokenizer, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])


def _prune(name: str):
    loaded = tiny_family(name, own_tokenizer=True)
    original = copy.deepcopy(loaded)
    pruned, summary = prune_vocabulary(loaded, CORPUS)
    return original, pruned, summary


def _covered(original, pruned, texts) -> list[str]:
    """The texts whose original tokens are all still in the pruned vocabulary."""
    kept = pruned.tokenizer.get_vocab()
    return [t for t in texts if all(p in kept for p in _pieces(original.tokenizer, t))]


def _run(loaded, texts):
    return logits(loaded, tokenize(loaded.tokenizer, texts, 64))


def test_same_tokens_and_logits_when_original_tokens_all_kept(family):
    original, pruned, summary = _prune(family)
    texts = _covered(original, pruned, [*CORPUS, *_recombined()])
    # words tokenize alone, so most recombined text is covered (byte-level BPE: not a word
    # that starts the text without a leading space, if the corpus had it only mid-sentence)
    assert texts[:len(CORPUS)] == list(CORPUS) and len(texts) >= len(CORPUS) + 20
    for text in texts:
        assert _pieces(pruned.tokenizer, text) == _pieces(original.tokenizer, text), text
    assert torch.equal(_run(pruned, texts), _run(original, texts))


def test_every_text_encodes_when_words_are_outside_the_corpus(family):
    _, pruned, _ = _prune(family)
    tokenizer = pruned.tokenizer
    for text in OUTSIDE:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids and max(ids) < len(tokenizer)
        if family == "roberta":  # every byte is kept: no unknown token, the text comes back
            assert tokenizer.unk_token_id not in ids
            assert tokenizer.decode(ids) == text
    # ASCII spelled from kept single characters, not lost to the unknown token
    assert tokenizer.unk_token not in _pieces(tokenizer, "zebra crossing at 42 mph!")


def test_embedding_rows_match_kept_ids_and_checkpoint_reloads_when_pruned(family, tmp_path):
    original, pruned, summary = _prune(family)
    rows = word_embedding(pruned).num_embeddings
    assert rows == len(pruned.tokenizer) == summary["vocab_after"] < summary["vocab_before"]
    assert pruned.module.hf.config.vocab_size == rows
    save_model(pruned, tmp_path)
    assert not list(tmp_path.glob("*.model"))  # no stale SentencePiece file beside the json
    reloaded = load_model(tmp_path)
    assert type(reloaded.tokenizer) is type(original.tokenizer)
    texts = [*CORPUS[:8], *OUTSIDE]
    assert [_pieces(reloaded.tokenizer, t) for t in texts] == \
        [_pieces(pruned.tokenizer, t) for t in texts]
    assert torch.equal(_run(reloaded, texts), _run(pruned, texts))


@pytest.mark.parametrize("name", UNIGRAM)
def test_special_ids_follow_the_new_numbering_when_vocabulary_shrinks(name):
    original, pruned, _ = _prune(name)
    old, new = original.tokenizer, pruned.tokenizer
    for attr in ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token"):
        token = getattr(old, attr)
        assert new.convert_ids_to_tokens(getattr(new, f"{attr}_id")) == token
    if old.mask_token_id == len(old) - 1:  # appended after the pieces: now the last id again
        assert new.mask_token_id == len(new) - 1
    ids = new("東")["input_ids"]
    assert ids[0] == new.cls_token_id and ids[-1] == new.sep_token_id
    assert new.unk_token_id in ids  # the Unigram's unk_id was renumbered with the rest


def _hand_unigram():
    """A Unigram where "▁éè" + "ê" (-40) beats "▁" + "é" + "èê" (-51.1) only while "é" is
    scored, or an unknown "é" costs more than -30: "ë" (-60) sets that penalty."""
    from transformers import XLMRobertaTokenizerFast

    specials = [(t, 0.0) for t in ("<s>", "<pad>", "</s>", "<unk>")]
    pieces = [("▁", -1.0), ("▁éè", -20.0), ("ê", -20.0), ("èê", -0.1), ("é", -50.0),
              ("ë", -60.0), ("<mask>", 0.0)]
    return XLMRobertaTokenizerFast(vocab=specials + pieces)


def test_unknown_penalty_unchanged_when_lowest_scored_piece_is_not_in_corpus():
    tokenizer = _hand_unigram()
    assert _pieces(tokenizer, "éèê")[1:-1] == ["▁éè", "ê"]
    data = tokenizer_data(tokenizer)
    keep = required_ids(data, corpus_token_ids(tokenizer, ["éèê", "èê"]))
    assert tokenizer.convert_tokens_to_ids("ë") in keep  # not in the corpus, kept for its score
    pruned = pruned_tokenizer(tokenizer, keep)
    assert "é" not in pruned.get_vocab()
    assert _pieces(pruned, "éèê")[1:-1] == ["▁éè", "ê"]


def _wrapped(model, pre_tokenizer):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizer
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


@pytest.mark.parametrize("kind, message", [("bpe", "not BPE without a ByteLevel"),
                                           ("wordlevel", "not WordLevel")])
def test_user_error_names_the_model_and_nothing_changes_when_tokenizer_kind_unsupported(
        kind, message):
    from tokenizers import models, pre_tokenizers

    vocab = {"<unk>": 0, "a": 1, "b": 2, "ab": 3}
    model = (models.BPE(vocab, [("a", "b")], unk_token="<unk>", byte_fallback=True)
             if kind == "bpe" else models.WordLevel(vocab, unk_token="<unk>"))
    bert = tiny_family("bert")
    loaded = dataclasses.replace(bert, tokenizer=_wrapped(model, pre_tokenizers.Whitespace()))
    rows = word_embedding(loaded).num_embeddings
    with pytest.raises(UserError, match=message):
        prune_vocabulary(loaded, ["ab a"])
    assert word_embedding(loaded).num_embeddings == rows


def _generic_unigram():
    """A tokenizer.json loaded as is (no family class rebuilds it): a Unigram whose unknown and
    special tokens come after the pieces, so pruning moves all of them."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    trained = tiny_family("albert", own_tokenizer=True).tokenizer
    pieces = [p for p in tokenizer_data(trained)["model"]["vocab"] if p[1] != 0.0]
    specials = ["<unk>", "[CLS]", "[SEP]", "[PAD]"]
    backend = Tokenizer(models.Unigram([*map(tuple, pieces), *((t, 0.0) for t in specials)],
                                       unk_id=len(pieces)))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    ids = {t: len(pieces) + k for k, t in enumerate(specials)}
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[(t, ids[t]) for t in ("[CLS]", "[SEP]")])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]")


def test_unknown_and_template_ids_renumbered_when_tokenizer_json_is_loaded_as_is():
    tokenizer = _generic_unigram()
    keep = required_ids(tokenizer_data(tokenizer), corpus_token_ids(tokenizer, CORPUS))
    pruned = pruned_tokenizer(tokenizer, keep)
    assert len(pruned) == len(keep) < len(tokenizer)
    text = f"{CORPUS[5]} 東"
    assert _pieces(pruned, text) == _pieces(tokenizer, text)
    assert _pieces(pruned, text)[0] == "[CLS]" and _pieces(pruned, text)[-2:] == ["<unk>", "[SEP]"]
    ids = pruned("東")["input_ids"]  # "▁" then the unknown "東"
    assert ids[0] == pruned.cls_token_id == len(keep) - 3
    assert ids[-2:] == [pruned.unk_token_id, pruned.sep_token_id] == [len(keep) - 4, len(keep) - 2]


def test_user_error_when_family_class_rebuilds_a_different_unknown_id(monkeypatch):
    import edgecompress.compress.prune.vocab as vocab

    def moved_unk(data, keep):  # as if a pruned unknown token landed where the class can't see
        data = renumbered(data, keep)
        data["model"]["unk_id"] += 1
        return data

    tokenizer = tiny_family("xlm-roberta", own_tokenizer=True).tokenizer  # XLM-R fixes unk at 3
    keep = required_ids(tokenizer_data(tokenizer), corpus_token_ids(tokenizer, CORPUS))
    monkeypatch.setattr(vocab, "renumbered", moved_unk)
    with pytest.raises(UserError, match="does not reload a pruned vocabulary consistently"):
        pruned_tokenizer(tokenizer, keep)


@pytest.mark.parametrize("name", ["distilbert", "electra", "mobilebert", "modernbert"])
def test_wordpiece_families_keep_their_logits_when_the_vocabulary_is_pruned(name, tmp_path):
    # These families ship WordPiece tokenizers; the tiny models carry MiniLM's (30.5 k pieces).
    loaded = tiny_family(name)
    original = copy.deepcopy(loaded)
    pruned, _ = prune_vocabulary(loaded, CORPUS)
    assert word_embedding(pruned).num_embeddings == len(pruned.tokenizer) < 2000
    texts = _covered(original, pruned, [*CORPUS, *_recombined()])
    assert len(texts) >= len(CORPUS)
    torch.testing.assert_close(_run(pruned, texts), _run(original, texts), atol=1e-6, rtol=0)
    save_model(pruned, tmp_path / name)
    torch.testing.assert_close(_run(load_model(tmp_path / name), texts), _run(pruned, texts),
                               atol=0, rtol=0)
