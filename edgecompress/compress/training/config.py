"""`FinetuneConfig`: how a model is trained (fine-tuning, and a student's distillation); frozen,
validated, and free of torch so the CLI can derive its flags from it without loading anything."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from edgecompress.compress.config import (
    FieldError,
    check_choice,
    check_types,
    choice_values,
    option,
)


class Precision(StrEnum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


PRECISIONS = choice_values(Precision)


def default_learning_rate(kind: str) -> float:
    """The learning rate when none is given, by the model's kind: 5e-4 for a plain encoder
    (randomly initialised, trained from scratch), 5e-5 for a pretrained checkpoint (the usual
    fine-tuning rate; larger steps erase what pretraining learned). Used by `finetune` and by
    recipes alike, through `FinetuneConfig.for_model`."""
    return 5e-4 if kind == "plain" else 5e-5


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = option(1, help="Passes over the train split.")
    batch_size: int = option(32, help="Sentences per training step.")
    learning_rate: float | None = option(None, help="AdamW peak learning rate (default: 5e-5 "
                                                    "for a pretrained checkpoint, 5e-4 for a "
                                                    "plain encoder trained from scratch).")
    max_length: int = option(64, help="Tokens per sentence (longer ones are cut).")
    seed: int = option(0, help="Seed of the batch order, dropout and new weights.")
    warmup_ratio: float = option(0.06, help="Fraction of the steps spent warming up the "
                                            "learning rate, in [0, 1).")
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases and norms).")
    checkpoint_every: int = option(50, help="Steps between resumable checkpoints.")
    max_steps: int | None = option(None, help="Stop after this many steps (default: all "
                                              "epochs).")
    # "auto": bfloat16 autocast where the CPU computes bf16 natively (AMX / AVX512-BF16 / arm
    # bf16; measured 1.9x faster steps on an AMX host), float32 elsewhere; weights stay float32
    precision: str = option("auto", choices=Precision,
                            help="Training arithmetic: auto (bf16 where the CPU has it), fp32, "
                                 "bf16.")
    # batches of similar length: less padding (1.6x faster steps)
    length_buckets: bool = option(True, help="Batch sentences of similar length (less "
                                             "padding).")
    # keep the token embedding as it is: its dense gradient and AdamW update over 30 k x 384
    # weights were 40 % of a 3-layer student's step (0.21 vs 0.35 s measured)
    freeze_embeddings: bool = option(False, help="Do not train the token embedding (faster "
                                                 "steps).")

    def __post_init__(self) -> None:
        check_types(self)
        if self.epochs < 1:
            raise FieldError("epochs", f"must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise FieldError("batch_size", f"must be >= 1, got {self.batch_size}")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise FieldError("learning_rate", f"must be in (0, 1), got {self.learning_rate}")
        if self.max_length < 8:
            raise FieldError("max_length", f"must be >= 8, got {self.max_length}")
        if not 0 <= self.warmup_ratio < 1:
            raise FieldError("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        if self.checkpoint_every < 1:
            raise FieldError("checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        if self.max_steps is not None and self.max_steps < 1:
            raise FieldError("max_steps", f"must be >= 1, got {self.max_steps}")
        check_choice("precision", self.precision, Precision)

    def for_model(self, kind: str) -> FinetuneConfig:
        """This config with the learning rate resolved for a model of `kind` ("plain" or "hf")
        when none was given (default_learning_rate)."""
        if self.learning_rate is not None:
            return self
        return replace(self, learning_rate=default_learning_rate(kind))

    def fingerprint(self, *extra: str) -> str:
        """Hash of the config (+ model/data identity) that a checkpoint must match to resume."""
        payload = json.dumps([asdict(self), *extra], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]
