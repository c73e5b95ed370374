"""Honest evaluation: accuracy with a Wilson 95 % interval, macro-F1, agreement with a reference,
Spearman / Pearson for similarity sets, and for sentence encoders the nearest-neighbour
retrieval of a compressed model against its reference's (what on-device search needs).

Models are reached only through a runner (`run(input_ids, attention_mask) -> (B, C)` numpy), so a
torch module, an ONNX file and a TFLite file are evaluated by the same code.

Every reported number runs the model as it is deployed (`predict_as_deployed`): one sentence at a
time at its real length for dynamic shapes, the artifact's own signature for fixed ones. Padded
batches are not equivalent: dynamic int8 quantizes a whole batch's activations with one scale, so
a sentence's logits depend on its neighbours and on their padding (the demo's x86 artifact:
81.35 % in padded batches of 64, 81.15 % one sentence at a time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgecompress.stats import wilson_interval

DEFAULT_MAX_LENGTH = 128
# How reported numbers are measured; part of a run's eval step identity, so a record measured
# another way (padded batches of 64, before) is measured again. Change it with the method.
EVALUATION_METHOD = "as-deployed"


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


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts, K = `num_classes`: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def _classes(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> int:
    """`num_classes`, or more when an id in truth or prediction lies past it."""
    return max(num_classes, int(np.max(y_true, initial=-1)) + 1,
               int(np.max(y_pred, initial=-1)) + 1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0.0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def _f1(matrix: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2 tp / (2 tp + fp + fn) of a confusion matrix: (K,) float, 0 where the
    class occurs in neither truth nor prediction."""
    tp = np.diag(matrix).astype(np.float64)
    return _ratio(2 * tp, matrix.sum(axis=0) + matrix.sum(axis=1))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over classes that occur in truth or prediction."""
    matrix = confusion_matrix(y_true, y_pred, _classes(y_true, y_pred, num_classes))
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    return float(np.mean(_f1(matrix)[present])) if present.any() else 0.0


def per_class(y_true: np.ndarray, y_pred: np.ndarray, labels) -> dict:
    """eval.json's `per_class` and `confusion` for class ids named by `labels` (class id i is
    `labels[i]`; ids past the names are named by their number): recall, precision, F1 and
    support per class in that order, 0.0 where a ratio has nothing to divide by."""
    k = _classes(y_true, y_pred, len(labels))
    names = [str(name) for name in labels] + [str(i) for i in range(len(labels), k)]
    matrix = confusion_matrix(y_true, y_pred, k)
    tp, support = np.diag(matrix).astype(np.float64), matrix.sum(axis=1)
    return {"per_class": {"labels": names, "recall": _ratio(tp, support).tolist(),
                          "precision": _ratio(tp, matrix.sum(axis=0)).tolist(),
                          "f1": _f1(matrix).tolist(), "support": support.tolist()},
            "confusion": matrix.tolist()}


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


def _max_length(runner, max_length: int) -> int:
    """The token budget a runner can take: fixed-shape runners their seq length, bounded ones
    (ExecuTorch) at most theirs."""
    fixed = getattr(runner, "fixed_shape", None) or getattr(runner, "bounded_shape", None)
    return min(max_length, fixed[1]) if fixed and not _takes_images(runner) else max_length


def _takes_images(runner) -> bool:
    from edgecompress.targets.inputs import is_image

    return is_image(getattr(runner, "input_names", ()))


def truncation(tokenizer, texts, max_length: int) -> dict | None:
    """eval.json's `truncated`: how many of `texts` are longer than `max_length` tokens (special
    tokens included) and so lose their end; None for images (an image processor). Also what
    `run --dry-run` says per split (compress/data/audit.py)."""
    if hasattr(tokenizer, "encode_examples"):
        return None
    texts = list(texts)
    rows = sum(_longer(texts[start:start + TRUNCATION_BATCH], tokenizer, max_length)
               for start in range(0, len(texts), TRUNCATION_BATCH))
    return {"max_length": int(max_length), "rows": rows,
            "share": rows / len(texts) if texts else 0.0}


TRUNCATION_BATCH = 512  # texts per tokenizer call: bounded memory on 5,000-word articles
CHARS_PER_TOKEN = 6  # a prefix this many chars per token long holds max_length tokens of prose


def _longer(texts: list[str], tokenizer, max_length: int) -> int:
    """How many `texts` tokenize to more than `max_length` tokens. Each text is first read up to
    the last whitespace before CHARS_PER_TOKEN * (max_length + 1) characters: the tokenizers here
    split words at whitespace, so a prefix's tokens are the first tokens of the whole text, and a
    prefix already over max_length decides it (a 5,000-word article costs a paragraph). Only a
    text whose prefix is not over is tokenized whole. Lengths are cut at max_length + 1, so no
    length warning prints."""
    limit = CHARS_PER_TOKEN * (max_length + 1)
    heads = [_head(text, limit) for text in texts]
    over = token_lengths(tokenizer, heads, max_length + 1) > max_length
    undecided = [text for text, head, cut in zip(texts, heads, over) if not cut and head != text]
    rest = token_lengths(tokenizer, undecided, max_length + 1) > max_length if undecided else ()
    return int(over.sum()) + int(sum(rest))


def _head(text: str, limit: int) -> str:
    """`text` up to its last whitespace before `limit` characters (all of it when shorter, or
    when there is no whitespace to cut at)."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
    return text[:cut] if cut > 0 else text


def predict(runner, tokenizer, texts, *, batch_size: int = 64,
            max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Outputs (N, C) of `runner` on `texts` in padded batches of `batch_size`: for training
    progress and embeddings of torch modules. Not for an artifact's reported numbers: a dynamic
    int8 artifact's outputs depend on the batch (use `predict_as_deployed`)."""
    max_length = _max_length(runner, max_length)
    outputs = []
    for start in range(0, len(texts), batch_size):
        batch = tokenize(tokenizer, texts[start:start + batch_size], max_length)
        outputs.append(np.asarray(runner.run(**batch)))
    return np.concatenate(outputs, axis=0)


@dataclass(frozen=True)
class EvaluatedAs:
    """How a model was run for its number. `batch` rows per call; `lengths` "real": each call
    padded only to its own longest input (batch 1: unpadded, as deployed), "fixed": every call
    at the artifact's static shape (`seq_len` tokens; None for images, whose shape is the
    image's)."""

    batch: int
    lengths: str  # "real" | "fixed"
    seq_len: int | None

    def to_json(self) -> dict:
        return asdict(self)


def evaluated_as(runner) -> EvaluatedAs:
    """How `predict_as_deployed` runs `runner`: a fixed-shape artifact in its static signature
    (its batch, its seq length), a bounded one (ExecuTorch: exactly its batch) and every
    dynamic-shape model (ONNX, torch) at batch 1 and real lengths."""
    fixed = getattr(runner, "fixed_shape", None)
    if fixed is not None:
        return EvaluatedAs(int(fixed[0]), "fixed",
                           None if _takes_images(runner) else int(fixed[1]))
    bounded = getattr(runner, "bounded_shape", None)
    return EvaluatedAs(int(bounded[0]) if bounded else 1, "real", None)


def predict_as_deployed(runner, tokenizer, texts, *,
                        max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Outputs (N, C) of `runner` on `texts`, run the way the device runs it
    (`evaluated_as(runner)`): the one path of every reported accuracy, agreement and embedding.

    Batched evaluation is not equivalent for dynamic int8 (one activation scale per batch) and
    only nearly so for fp32 (padding changes the reduction order), so nothing is batched that
    the device does not batch."""
    batch = evaluated_as(runner).batch
    max_length = _max_length(runner, max_length)
    texts = list(texts)
    outputs = [np.asarray(runner.run(**tokenize(tokenizer, texts[start:start + batch],
                                                max_length)))
               for start in range(0, len(texts), batch)]
    return np.concatenate(outputs, axis=0)


def split_predictions(runner, tokenizer, split, *,
                      max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Argmax class ids (N,) of `runner` on every sentence of `split`, as deployed: the one way
    accuracy, agreement and paired deltas get their predictions."""
    return predict_as_deployed(runner, tokenizer, split.texts,
                               max_length=max_length).argmax(axis=1)


def split_accuracy(runner, tokenizer, split, *, max_length: int = DEFAULT_MAX_LENGTH) -> float:
    """Fraction of `split`'s sentences `runner` classifies right."""
    pred = split_predictions(runner, tokenizer, split, max_length=max_length)
    return float(np.mean(pred == np.asarray(split.labels)))


@dataclass(frozen=True)
class SplitEvaluation:
    """One model on one labelled split, run as deployed. `record` holds eval.json's metric keys:
    accuracy, ci95, n, correct, macro_f1 (agreement with a reference), per_class, confusion,
    evaluated_as and, for text, truncated."""

    outputs: np.ndarray  # (N, C) float32, as the model returned them
    pred: np.ndarray  # (N,) argmax class ids
    record: dict


def evaluate_split(runner, tokenizer, split, labels, *, max_length: int = DEFAULT_MAX_LENGTH,
                   reference_pred: np.ndarray | None = None) -> SplitEvaluation:
    """The one way an accuracy is measured (`edgecompress eval`, a run's eval stage,
    benchmarks/anchors.py): `runner` on `split` (class ids named by `labels`) through
    `predict_as_deployed`. `reference_pred` (N,) adds agreement. Raises ValueError when the
    split has no labels."""
    if split.labels is None:
        raise ValueError("this split has no labels: accuracy needs a labelled dataset")
    outputs = predict_as_deployed(runner, tokenizer, split.texts, max_length=max_length)
    pred, truth = outputs.argmax(axis=1), np.asarray(split.labels)
    metrics = classification_metrics(truth, pred, len(labels), reference_pred)
    record = {**metrics.to_json(), **per_class(truth, pred, labels),
              "evaluated_as": evaluated_as(runner).to_json()}
    truncated = truncation(tokenizer, split.texts, _max_length(runner, max_length))
    if truncated is not None:
        record["truncated"] = truncated
    return SplitEvaluation(outputs, pred, record)


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

    embeddings = predict_as_deployed(runner, tokenizer, texts, max_length=max_length)
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
    ours = predict_as_deployed(model[0], model[1], texts, max_length=max_length)
    theirs = predict_as_deployed(reference[0], reference[1], texts, max_length=max_length)
    out = {"n": len(texts), **retrieval_metrics(ours, theirs, k).to_json()}
    if ours.shape[1] == theirs.shape[1]:
        out["reference_cosine"] = mean_cosine(ours, theirs)
    return out
