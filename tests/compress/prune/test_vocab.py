from __future__ import annotations

import copy

import pytest
import torch

from edgecompress.compress.evaluation.evaluate import tokenize
from edgecompress.compress.models.loading import load_model, save_model
from edgecompress.compress.prune.vocab import corpus_texts, prune_vocabulary
from edgecompress.errors import UserError
from tests.compress.prune.conftest import logits
from tests.models import SENTENCES

CORPUS = SENTENCES[:3]
IN_VOCAB = ["a witty movie.", "the plot is charming", "nothing but a hilarious film"]


def _run(loaded, texts):
    return logits(loaded, tokenize(loaded.tokenizer, texts, 64))


def test_same_logits_when_text_in_pruned_vocabulary(fresh, tmp_path):
    original = copy.deepcopy(fresh)
    pruned, summary = prune_vocabulary(fresh, CORPUS)
    assert summary["vocab_after"] < 300 < summary["vocab_before"]
    assert len(pruned.tokenizer) == summary["vocab_after"]
    expected = _run(original, IN_VOCAB)
    assert torch.equal(_run(pruned, IN_VOCAB), expected)
    save_model(pruned, tmp_path)  # the tokenizer on disk is consistent with the embedding
    assert torch.equal(_run(load_model(tmp_path), IN_VOCAB), expected)


def test_unknown_characters_map_to_unk_when_not_in_corpus(fresh):
    pruned, _ = prune_vocabulary(fresh, CORPUS)
    tokenizer = pruned.tokenizer
    assert tokenizer.tokenize("€") == ["[UNK]"]
    # outside the corpus but spellable from kept single characters: split, not lost
    assert "[UNK]" not in tokenizer.tokenize("zebra")


def test_user_error_when_vocabulary_corpus_empty(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(UserError, match="has no text"):
        corpus_texts(str(empty))
