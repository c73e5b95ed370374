"""The llm commands' configs, importable without torch (the CLI derives its flags from these
fields at `--help` time): `LMPruneConfig`, what structured pruning removes, `LMDistillConfig`,
how a (pruned) student is trained on its teacher, and `EvalConfig`, how quality is measured.

Pruning's sizes are counts of what is removed, named `drop_*` so none reads as `edgecompress
prune`'s fractions (`layers`, `heads`, `ffn`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from edgecompress.compress.config import FieldError, check_choice, check_types, option
from edgecompress.compress.prune.config import parse_keep_layers

if TYPE_CHECKING:
    from edgecompress.compress.llm.families import Shape


class LayerMethod(StrEnum):
    EACH = "each"
    BLOCK = "block"


@dataclass(frozen=True)
class LMPruneConfig:
    """What is removed, as counts (prune's `layers` / `heads` / `ffn` are fractions; these are
    named `drop_*` so neither reads as the other), per layer for heads and FFN neurons."""

    drop_layers: int = option(0, help="Count of decoder layers to drop, chosen by angular "
                                      "distance.")
    keep_layers: tuple[int, ...] | None = option(
        None, parse=parse_keep_layers, help="Keep exactly these layers, e.g. 0,1,2,5 (instead "
                                            "of dropping a count).")
    layer_method: str = option("each", choices=LayerMethod,
                               help="each: drop the layers whose output is closest to their "
                                    "input (ShortGPT); block: the closest contiguous block "
                                    "(Gromov et al.).")
    drop_kv_heads: int = option(0, help="Count of KV heads removed per layer, with their query "
                                        "heads.")
    drop_query_heads: int = option(0, help="Count of query heads removed from every KV group.")
    drop_ffn: int = option(0, help="Count of FFN neurons removed per layer.")
    samples: int = option(32, help="Calibration texts.")
    max_length: int = option(256, help="Tokens per calibration text.")
    seed: int = option(0, help="Seed of the calibration sample.")

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("drop_layers", "drop_kv_heads", "drop_query_heads", "drop_ffn"):
            if getattr(self, name) < 0:
                raise FieldError(name, f"must be >= 0, got {getattr(self, name)}")
        for name, low in (("samples", 1), ("max_length", 2)):
            if getattr(self, name) < low:
                raise FieldError(name, f"must be >= {low}, got {getattr(self, name)}")
        check_choice("layer_method", self.layer_method, LayerMethod)
        if self.keep_layers is not None:
            if self.drop_layers:
                raise FieldError("keep_layers", "give either drop_layers or keep_layers, not "
                                                "both")
            if not self.keep_layers or any(i < 0 for i in self.keep_layers):
                raise FieldError("keep_layers", f"needs layer numbers >= 0, got "
                                                f"{self.keep_layers}")
            if len(set(self.keep_layers)) != len(self.keep_layers):
                raise FieldError("keep_layers", f"lists a layer twice: {self.keep_layers}")
        if self.drop_kv_heads and self.drop_query_heads:
            raise FieldError("drop_query_heads", "give either drop_kv_heads or drop_query_heads, "
                                                 "not both")

    @property
    def needs_scores(self) -> bool:
        return bool(self.drop_layers or self.drop_kv_heads or self.drop_query_heads
                    or self.drop_ffn)

    def check_model(self, shape: Shape) -> None:
        """Raise FieldError when the model cannot take these cuts (before any calibration)."""
        from edgecompress.compress.llm.families import DECODERS

        family = DECODERS[shape.family]
        if self.keep_layers is not None and max(self.keep_layers) >= shape.layers:
            raise FieldError("keep_layers", f"the model has layers 0..{shape.layers - 1}, got "
                                            f"{max(self.keep_layers)}")
        if self.drop_layers >= shape.layers:
            raise FieldError("drop_layers", f"must leave a layer of {shape.layers}, got "
                                            f"{self.drop_layers}")
        if (self.drop_kv_heads or self.drop_query_heads) and family.head_cut:
            raise FieldError("drop_kv_heads" if self.drop_kv_heads else "drop_query_heads",
                             family.head_cut)
        if self.drop_kv_heads >= shape.kv_heads:
            raise FieldError("drop_kv_heads", f"must leave a KV head of {shape.kv_heads}, got "
                                              f"{self.drop_kv_heads}")
        group = shape.heads // shape.kv_heads
        if self.drop_query_heads >= group:
            raise FieldError("drop_query_heads", f"must leave a query head in each group of "
                                                 f"{group}, got {self.drop_query_heads}")
        if self.drop_ffn >= shape.ffn:
            raise FieldError("drop_ffn", f"must leave a neuron of {shape.ffn}, got "
                                         f"{self.drop_ffn}")

    def to_json(self) -> dict:
        data = asdict(self)
        data["keep_layers"] = None if self.keep_layers is None else list(self.keep_layers)
        return data


@dataclass(frozen=True)
class EvalConfig:
    """How quality is measured. `context` tokens per window (BOS included), `stride` new tokens
    scored per later window, `windows` windows in all (the text must hold them)."""

    context: int = option(512, help="Tokens per window, BOS included.")
    stride: int = option(256, help="New tokens scored per window after the first.")
    windows: int = option(32, help="Windows scored (fixed, so runs compare).")
    max_new_tokens: int = option(24, help="Greedy tokens per prompt (0: none).")
    resamples: int = option(1000, help="Bootstrap resamples for the intervals.")
    confidence: float = option(0.95, help="Confidence level of the intervals, in (0, 1).")
    seed: int = option(0, help="Bootstrap seed.")

    def __post_init__(self) -> None:
        check_types(self)
        for name, low in (("context", 8), ("stride", 1), ("windows", 1), ("max_new_tokens", 0),
                          ("resamples", 10)):
            if getattr(self, name) < low:
                raise FieldError(name, f"must be >= {low}, got {getattr(self, name)}")
        if self.stride >= self.context:
            raise FieldError("stride", f"must be below context ({self.context}), got "
                                       f"{self.stride}")
        if not 0.0 < self.confidence < 1.0:
            raise FieldError("confidence", f"must be in (0, 1), got {self.confidence}")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LMDistillConfig:
    """How a decoder student learns from its teacher on training text (distill.py): `steps`
    optimizer steps of `batch_size` sequences of `context` tokens; forward KL(teacher ||
    student) over the full vocabulary at `temperature` (scaled by T²), optionally next-token
    cross-entropy and a hidden-state loss on mapped layers. A weight of 0 switches a loss off."""

    steps: int = option(300, help="Optimizer steps.")
    batch_size: int = option(4, help="Sequences per step.")
    context: int = option(256, help="Tokens per training sequence (BOS included).")
    learning_rate: float = option(1e-4, help="AdamW peak learning rate.")
    warmup_ratio: float = option(0.05, help="Fraction of the steps spent warming up the "
                                            "learning rate (then linear decay to 0).")
    weight_decay: float = option(0.0, help="AdamW weight decay (not on norms).")
    temperature: float = option(1.0, help="Softmax temperature of the logit KL.")
    kd_weight: float = option(1.0, help="Weight of KL(teacher || student), full vocabulary.")
    ce_weight: float = option(0.0, help="Weight of next-token cross-entropy on the text.")
    hidden_weight: float = option(0.0, help="Weight of the hidden-state loss (normalised MSE "
                                            "of each kept layer's output against the teacher "
                                            "layer it was; pruned students map by "
                                            "prune_report.json).")
    freeze_embeddings: bool = option(True, help="Keep the token embedding (and a tied output "
                                                "head) as it is.")
    max_train_tokens: int | None = option(None, help="Train on at most this many tokens of the "
                                                     "training text (default: all of it).")
    seed: int = option(0, help="Seed of the sequence order.")
    checkpoint_every: int = option(50, help="Steps between resumable checkpoints.")
    max_minutes: float | None = option(None, help="Stop after this much training time (a "
                                                  "rerun continues).")

    def __post_init__(self) -> None:
        check_types(self)
        for name, low in (("steps", 1), ("batch_size", 1), ("context", 2),
                          ("checkpoint_every", 1)):
            if getattr(self, name) < low:
                raise FieldError(name, f"must be >= {low}, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise FieldError("learning_rate", f"must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise FieldError("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        if not self.temperature > 0:
            raise FieldError("temperature", f"must be > 0, got {self.temperature}")
        for name in ("weight_decay", "kd_weight", "ce_weight", "hidden_weight"):
            if getattr(self, name) < 0:
                raise FieldError(name, f"must be >= 0, got {getattr(self, name)}")
        if not (self.kd_weight or self.ce_weight or self.hidden_weight):
            raise FieldError("kd_weight", "every loss weight is 0: nothing to train on")
        if self.max_train_tokens is not None and self.max_train_tokens < self.context:
            raise FieldError("max_train_tokens", f"must hold a sequence of {self.context} "
                                                 f"tokens, got {self.max_train_tokens}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise FieldError("max_minutes", f"must be > 0, got {self.max_minutes}")

    def to_json(self) -> dict:
        return asdict(self)

    def fingerprint(self, *extra: str) -> str:
        """Hash of what decides the training trajectory (+ model / data identity);
        `max_minutes` stops a run without changing where it goes, so it is left out."""
        import hashlib
        import json

        data = self.to_json()
        data.pop("max_minutes")
        payload = json.dumps([data, *extra], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def parse_lengths(text: str) -> tuple[int, ...]:
    """"128,512" -> (128, 512); raises ValueError."""
    return tuple(int(n) for n in text.split(","))


@dataclass(frozen=True)
class LMBenchConfig:
    """How LLM artifacts are timed (targets/llm/bench.py): time to first token per prompt
    length, decode tokens/s over `new_tokens`, medians of `repeats` interleaved rounds."""

    repeats: int = option(3, help="Interleaved rounds; numbers are medians.")
    prompt_lengths: tuple[int, ...] = option((128, 512), parse=parse_lengths,
                                             help="Prompt lengths timed for TTFT, "
                                                  "comma-separated.")
    new_tokens: int = option(128, help="New tokens timed for decode tokens/s.")

    def __post_init__(self) -> None:
        check_types(self)
        if self.repeats < 1:
            raise FieldError("repeats", f"must be >= 1, got {self.repeats}")
        if self.new_tokens < 2:
            raise FieldError("new_tokens", f"must be >= 2, got {self.new_tokens}")
        if not self.prompt_lengths or min(self.prompt_lengths) < 1:
            raise FieldError("prompt_lengths", f"needs lengths >= 1, got {self.prompt_lengths}")

    def to_json(self) -> dict:
        return {**asdict(self), "prompt_lengths": list(self.prompt_lengths)}
