"""Honest evaluation: accuracy with a Wilson 95 % interval, macro-F1, agreement with a reference,
Spearman / Pearson for similarity sets, and for sentence encoders the nearest-neighbour
retrieval of a compressed model against its reference's (what on-device search needs).

Models are reached only through a runner (`run(input_ids, attention_mask) -> (B, C)` numpy), so a
torch module, an ONNX file and a TFLite file are evaluated by the same code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgecompress.stats import wilson_interval

DEFAULT_MAX_LENGTH = 128


@dataclass(frozen=True)
class ClassificationMetrics:
    accuracy: float
    ci95: tuple[float, float]
    n: int
    correct: int
    macro_f1: float
    agreement: float | None = None  # fraction of inputs where argmax equals the reference's
    agreement_ci95: tuple[float, float] | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()
                if v is not None}


@dataclass(frozen=True)
class SimilarityMetrics:
    spearman: float
    pearson: float
    n_pairs: int

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RetrievalMetrics:
    """Nearest-neighbour search of one embedding model judged by a reference model's.

    Every sentence is a query over the others; the reference's top-k neighbours are the ground
    truth. `recall_at_k`: mean fraction of them in the model's top k; `mrr`: mean reciprocal
    rank, in the model's ranking, of the reference's nearest neighbour.
    """

    recall_at_k: float
    mrr: float
    k: int
    n: int

    def to_json(self) -> dict:
        return asdict(self)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over classes that occur in truth or prediction."""
    scores = []
    for c in range(num_classes):
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                           reference_pred: np.ndarray | None = None) -> ClassificationMetrics:
    """Metrics from label ids; `reference_pred` adds agreement with another model."""
    correct = int(np.sum(y_true == y_pred))
    n = int(len(y_true))
    agreement = agreement_ci = None
    if reference_pred is not None:
        same = int(np.sum(reference_pred == y_pred))
        agreement, agreement_ci = same / n if n else 0.0, wilson_interval(same, n)
    return ClassificationMetrics(
        accuracy=correct / n if n else 0.0, ci95=wilson_interval(correct, n), n=n,
        correct=correct, macro_f1=macro_f1(y_true, y_pred, num_classes),
        agreement=agreement, agreement_ci95=agreement_ci)


def tokenize(tokenizer, texts, max_length: int, pad_to: int | None = None) -> dict[str, np.ndarray]:
    """int64 input_ids / attention_mask (B, S); padded to the longest or to `pad_to`.

    `tokenizer` may be an image processor (compress/models/vision.py) and `texts` images: then the
    model's inputs are {"pixel_values": (B, C, H, W) float32} and the lengths do not apply.
    """
    encode = getattr(tokenizer, "encode_examples", None)
    if encode is not None:
        return encode(texts)
    padding = "max_length" if pad_to else "longest"
    encoded = tokenizer(list(texts), padding=padding, truncation=True,
                        max_length=pad_to or max_length, return_tensors="np")
    return {"input_ids": encoded["input_ids"].astype(np.int64),
            "attention_mask": encoded["attention_mask"].astype(np.int64)}


def token_lengths(tokenizer, texts, max_length: int) -> np.ndarray:
    """Tokens per text (special tokens included, truncated at `max_length`): (N,) int; all 1 for
    images (an image processor: one fixed-size input each)."""
    if hasattr(tokenizer, "encode_examples"):
        return np.ones(len(texts), dtype=np.int64)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64)


def predict(runner, tokenizer, texts, *, batch_size: int = 64,
            max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Outputs (N, C) of `runner` on `texts`, batched; fixed-shape runners get their seq length,
    bounded ones (ExecuTorch) at most theirs."""
    fixed = getattr(runner, "fixed_shape", None) or getattr(runner, "bounded_shape", None)
    max_length = min(max_length, fixed[1]) if fixed else max_length
    outputs = []
    for start in range(0, len(texts), batch_size):
        batch = tokenize(tokenizer, texts[start:start + batch_size], max_length)
        outputs.append(np.asarray(runner.run(**batch)))
    return np.concatenate(outputs, axis=0)


def split_predictions(runner, tokenizer, split, *,
                      max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Argmax class ids (N,) of `runner` on every sentence of `split`: the one way accuracy,
    agreement and paired deltas get their predictions."""
    return predict(runner, tokenizer, list(split.texts), max_length=max_length).argmax(axis=1)


def split_accuracy(runner, tokenizer, split, *, max_length: int = DEFAULT_MAX_LENGTH) -> float:
    """Fraction of `split`'s sentences `runner` classifies right."""
    pred = split_predictions(runner, tokenizer, split, max_length=max_length)
    return float(np.mean(pred == np.asarray(split.labels)))


def evaluate_classification(runner, tokenizer, split, num_classes: int, *,
                            reference_pred: np.ndarray | None = None,
                            max_length: int = DEFAULT_MAX_LENGTH) -> ClassificationMetrics:
    """Accuracy etc. of `runner` on a labelled split.

    `reference_pred` (N,) are another model's argmax predictions on the same split; agreement
    compares against them. Raises ValueError when the split has no labels.
    """
    if split.labels is None:
        raise ValueError("this split has no labels: accuracy needs a labelled dataset")
    y_pred = split_predictions(runner, tokenizer, split, max_length=max_length)
    return classification_metrics(np.asarray(split.labels), y_pred, num_classes, reference_pred)


def evaluate_similarity(runner, tokenizer, texts, pairs, *,
                        max_length: int = 256) -> SimilarityMetrics:
    """Spearman / Pearson between cosine similarity of embeddings and human scores."""
    from scipy.stats import pearsonr, spearmanr

    embeddings = predict(runner, tokenizer, list(texts), batch_size=16, max_length=max_length)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(min=1e-12)
    predicted = np.array([float(unit[i] @ unit[j]) for i, j, _ in pairs])
    human = np.array([score for _, _, score in pairs])
    return SimilarityMetrics(spearman=float(spearmanr(predicted, human).statistic),
                             pearson=float(pearsonr(predicted, human).statistic),
                             n_pairs=len(pairs))


def _unit(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay 0): (N, H) float64."""
    x = np.asarray(embeddings, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def mean_cosine(embeddings: np.ndarray, reference: np.ndarray) -> float:
    """Mean over rows of cos(embeddings[i], reference[i]); both (N, H)."""
    return float(np.mean(np.sum(_unit(embeddings) * _unit(reference), axis=1)))


def retrieval_metrics(embeddings: np.ndarray, reference: np.ndarray,
                      k: int = 10) -> RetrievalMetrics:
    """recall@k and MRR of `embeddings` (N, H) against `reference` (N, H') neighbours by cosine,
    each sentence a query over the other N - 1 (k is capped at N - 1). Raises ValueError for
    fewer than 2 rows or different row counts."""
    n = len(embeddings)
    if n < 2 or len(reference) != n:
        raise ValueError(f"retrieval needs >= 2 rows on both sides, got {n} and {len(reference)}")
    k = min(k, n - 1)
    model_rank = _ranking(embeddings)  # (N, N-1) neighbour ids, nearest first
    truth = _ranking(reference)[:, :k]  # (N, k)
    hits = [len(set(model_rank[i, :k]) & set(truth[i])) / k for i in range(n)]
    # 1-based position of the reference's nearest neighbour in the model's ranking
    positions = np.argmax(model_rank == truth[:, :1], axis=1) + 1
    return RetrievalMetrics(recall_at_k=float(np.mean(hits)), mrr=float(np.mean(1.0 / positions)),
                            k=k, n=n)


def _ranking(embeddings: np.ndarray) -> np.ndarray:
    """For each row, the other rows by falling cosine (ties by index): (N, N-1) int."""
    unit = _unit(embeddings)
    sims = unit @ unit.T  # (N, N)
    np.fill_diagonal(sims, -np.inf)  # a sentence is not its own neighbour
    order = np.argsort(-sims, axis=1, kind="stable")
    return order[:, :-1]  # the last is the row itself (-inf)


RETRIEVAL_ROWS = 1000  # held-out sentences searched against each other (N^2 similarities)


def evaluate_retrieval(model, reference, texts, *, k: int = 10, max_length: int = 128,
                       seed: int = 0) -> dict:
    """How well `model` stands in for `reference` in on-device search, on up to RETRIEVAL_ROWS of
    `texts` (a seeded draw): mean cosine of paired embeddings (when both have one width) and
    recall@k / MRR of `model`'s nearest neighbours against `reference`'s. `model` / `reference`
    are (runner, tokenizer) pairs of sentence encoders. Returns a JSON-ready dict."""
    import random

    texts = list(texts)
    if len(texts) > RETRIEVAL_ROWS:
        texts = random.Random(seed).sample(texts, RETRIEVAL_ROWS)
    ours = predict(model[0], model[1], texts, max_length=max_length)
    theirs = predict(reference[0], reference[1], texts, max_length=max_length)
    out = {"n": len(texts), **retrieval_metrics(ours, theirs, k).to_json()}
    if ours.shape[1] == theirs.shape[1]:
        out["reference_cosine"] = mean_cosine(ours, theirs)
    return out
