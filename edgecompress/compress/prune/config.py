"""`PruneConfig`: what to remove and how to score it; validated once, frozen."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from edgecompress.compress.config import (
    FieldError,
    check_choice,
    check_types,
    choice_values,
    option,
)


class Scope(StrEnum):
    GLOBAL = "global"
    LAYER = "layer"


class ImportanceMethod(StrEnum):
    GRADIENT = "gradient"
    MAGNITUDE = "magnitude"


class LayerMethod(StrEnum):
    IMPORTANCE = "importance"
    ALTERNATE = "alternate"


SCOPES, IMPORTANCE, LAYER_METHODS = (choice_values(c) for c in (Scope, ImportanceMethod,
                                                                   LayerMethod))


def _fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise FieldError(name, f"is the fraction removed and must be in [0, 1), got {value}")


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None


def parse_keep_layers(text: str) -> tuple[int, ...]:
    """"1,3,5" -> (1, 3, 5); raises ValueError."""
    return _ints(text)


def parse_drop_heads(text: str) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """"0:1,2;3:0" -> ((0, (1, 2)), (3, (0,))); raises ValueError."""
    spec = []
    for part in filter(str.strip, text.split(";")):
        layer, sep, heads = part.partition(":")
        if not sep:
            raise ValueError(f"expected LAYER:HEAD,HEAD;... got {part!r}")
        spec.append((_ints(layer)[0], _ints(heads)))
    return tuple(spec)


def parse_nm(text: str) -> tuple[int, int]:
    """"2:4" -> (2, 4); raises ValueError."""
    n, sep, m = text.partition(":")
    if not sep or not n.strip().isdigit() or not m.strip().isdigit():
        raise ValueError(f"expected N:M such as 2:4, got {text!r}")
    return int(n), int(m)


@dataclass(frozen=True)
class PruneConfig:
    """Fractions are of what is removed (0.5 = remove half). Budgets replace heads/ffn ratios.

    `drop_heads` is ((layer, (head, ...)), ...) in the input model's layer numbering;
    `keep_layers` likewise. `nm` = (n, m): keep n of every m consecutive weights.
    """

    heads: float = option(0.0, help="Fraction of attention heads to remove, in [0, 1).")
    ffn: float = option(0.0, help="Fraction of FFN neurons to remove, in [0, 1).")
    layers: float = option(0.0, help="Fraction of encoder layers to drop, in [0, 1).")
    keep_layers: tuple[int, ...] | None = option(None, parse=parse_keep_layers,
                                                 help="Layers to keep, e.g. 1,3,5.")
    drop_heads: tuple[tuple[int, tuple[int, ...]], ...] = option(
        (), parse=parse_drop_heads, help="Heads to remove, e.g. '0:1,2;3:0'.")
    scope: str = option("global", choices=Scope,
                        help="Allocate removals globally or per layer.")
    importance: str = option("gradient", choices=ImportanceMethod,
                             help="Score by gradient (on data) or weight magnitude.")
    layer_method: str = option("importance", choices=LayerMethod,
                               help="Drop layers by importance or alternately.")
    target_params: int | None = option(None, help="Prune heads+FFN to this many params.")
    target_mb: float | None = option(None, help="Prune heads+FFN to this fp32 MB.")
    vocab_corpus: str | None = option(None, help="Keep the tokens of this dataset/file.")
    vocab_corpus_text_col: str | None = option(
        None, help="Text column of a .csv/.jsonl vocabulary corpus (default: text; in a recipe "
                   "whose dataset is the same file, the dataset's text_col).")
    sparsity: float = option(0.0, help="Unstructured magnitude sparsity (size-only).")
    nm: tuple[int, int] | None = option(None, parse=parse_nm,
                                        help="N:M magnitude sparsity, e.g. 2:4 (size-only).")
    samples: int = option(256, help="Sentences to measure importance on.")
    batch_size: int = option(16, help="Sentences per importance batch.")
    max_length: int = option(128, help="Tokens per importance sentence.")
    seed: int = option(0, help="Seed of the importance sample.")

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("heads", "ffn", "layers", "sparsity"):
            _fraction(name, getattr(self, name))
        for name, choices in (("scope", Scope), ("importance", ImportanceMethod),
                              ("layer_method", LayerMethod)):
            check_choice(name, getattr(self, name), choices)
        self._check_conflicts()
        if self.nm is not None and not 0 < self.nm[0] < self.nm[1]:
            raise FieldError("nm", f"N:M needs 0 < N < M, got {self.nm[0]}:{self.nm[1]}")
        if self.target_params is not None and self.target_params < 1:
            raise FieldError("target_params", f"must be positive, got {self.target_params}")
        if self.target_mb is not None and self.target_mb <= 0:
            raise FieldError("target_mb", f"must be positive, got {self.target_mb}")
        for name, low in (("samples", 1), ("batch_size", 1), ("max_length", 2)):
            if getattr(self, name) < low:
                raise FieldError(name, f"must be >= {low}, got {getattr(self, name)}")
        if self.keep_layers is not None and any(i < 0 for i in self.keep_layers):
            raise FieldError("keep_layers", f"layer numbers must be >= 0, got {self.keep_layers}")

    def _check_conflicts(self) -> None:
        if self.keep_layers is not None and self.layers:
            raise FieldError("keep_layers", "give either layers or keep_layers, not both")
        if self.keep_layers is not None and not self.keep_layers:
            raise FieldError("keep_layers", "needs at least one layer")
        if self.target_params is not None and self.target_mb is not None:
            raise FieldError("target_mb", "give either target_params or target_mb, not both")
        if self.budget is not None and (self.heads or self.ffn):
            raise FieldError("heads", "a budget (target_params / target_mb) sets the head and "
                                      "FFN fractions itself; leave heads and ffn at 0")
        if self.sparsity and self.nm is not None:
            raise FieldError("nm", "give either sparsity or nm, not both")
        if self.vocab_corpus_text_col is not None and not self.vocab_corpus:
            raise FieldError("vocab_corpus_text_col", "names a column of vocab_corpus, which is "
                                                      "not given")

    @property
    def budget(self) -> int | None:
        """Target parameter count (fp32: 4 bytes a parameter for target_mb), or None."""
        if self.target_mb is not None:
            return int(self.target_mb * 1e6 / 4)
        return self.target_params

    @property
    def needs_data(self) -> bool:
        """Whether scoring needs sample sentences."""
        scored = self.heads or self.ffn or self.budget is not None
        return bool((scored and self.importance == "gradient")
                    or (self.layers and self.layer_method == "importance"))

    def to_json(self) -> dict:
        return asdict(self)

