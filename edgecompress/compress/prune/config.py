"""`PruneConfig`: what to remove and how to score it; validated once, frozen."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgecompress.compress.config import FieldError, check_types

SCOPES = ("global", "layer")
IMPORTANCE = ("gradient", "magnitude")
LAYER_METHODS = ("importance", "alternate")


def _fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise FieldError(name, f"is the fraction removed and must be in [0, 1), got {value}")


@dataclass(frozen=True)
class PruneConfig:
    """Fractions are of what is removed (0.5 = remove half). Budgets replace heads/ffn ratios.

    `drop_heads` is ((layer, (head, ...)), ...) in the input model's layer numbering;
    `keep_layers` likewise. `nm` = (n, m): keep n of every m consecutive weights.
    """

    heads: float = 0.0
    ffn: float = 0.0
    layers: float = 0.0
    keep_layers: tuple[int, ...] | None = None
    drop_heads: tuple[tuple[int, tuple[int, ...]], ...] = ()
    scope: str = "global"
    importance: str = "gradient"
    layer_method: str = "importance"
    target_params: int | None = None
    target_mb: float | None = None
    vocab_corpus: str | None = None
    sparsity: float = 0.0
    nm: tuple[int, int] | None = None
    samples: int = 256
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("heads", "ffn", "layers", "sparsity"):
            _fraction(name, getattr(self, name))
        for name, value, known in (("scope", self.scope, SCOPES),
                                   ("importance", self.importance, IMPORTANCE),
                                   ("layer_method", self.layer_method, LAYER_METHODS)):
            if value not in known:
                raise FieldError(name, f"must be one of {', '.join(known)}, got {value!r}")
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

    @property
    def budget(self) -> int | None:
        """Target parameter count (fp32: 4 bytes a parameter for --target-mb), or None."""
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


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None


def parse_keep_layers(text: str) -> tuple[int, ...]:
    """"1,3,5" -> (1, 3, 5)."""
    return _ints(text, "--keep-layers")


def parse_drop_heads(text: str) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """"0:1,2;3:0" -> ((0, (1, 2)), (3, (0,)))."""
    spec = []
    for part in filter(str.strip, text.split(";")):
        layer, sep, heads = part.partition(":")
        if not sep:
            raise ValueError(f"--drop-heads wants LAYER:HEAD,HEAD;... got {part!r}")
        spec.append((_ints(layer, "--drop-heads layer")[0], _ints(heads, "--drop-heads heads")))
    return tuple(spec)


def parse_nm(text: str) -> tuple[int, int]:
    """"2:4" -> (2, 4)."""
    n, sep, m = text.partition(":")
    if not sep or not n.strip().isdigit() or not m.strip().isdigit():
        raise ValueError(f"--nm wants N:M such as 2:4, got {text!r}")
    return int(n), int(m)


def config_from_options(*, keep_layers: str | None = None, drop_heads: str | None = None,
                        nm: str | None = None, **options) -> PruneConfig:
    """Build a PruneConfig from CLI strings; raises UserError with the one-line reason."""
    from edgecompress.compress.config import flag
    from edgecompress.errors import UserError

    try:
        return PruneConfig(keep_layers=parse_keep_layers(keep_layers) if keep_layers else None,
                           drop_heads=parse_drop_heads(drop_heads) if drop_heads else (),
                           nm=parse_nm(nm) if nm else None, **options)
    except FieldError as err:
        raise UserError(f"{flag(err.field)}: {err.message}") from None
    except ValueError as err:
        raise UserError(str(err)) from None


def parse_cli_values(options: dict) -> dict:
    """CLI strings ("1,3,5", "0:1;2:0", "2:4") -> the values a recipe's [prune] table holds."""
    from edgecompress.errors import UserError

    parsers = {"keep_layers": parse_keep_layers, "drop_heads": parse_drop_heads, "nm": parse_nm}
    try:
        return {k: (parsers[k](v) if k in parsers and isinstance(v, str) else v)
                for k, v in options.items()}
    except ValueError as err:
        raise UserError(str(err)) from None
