"""`DistillConfig`: which losses, how they are weighted, and how training runs; frozen, validated.

The optimisation settings (epochs, batch, learning rate, schedule, seed, checkpoint interval,
max steps) are a `FinetuneConfig`, so distillation and fine-tuning share batch order, optimizer
and checkpoint format (compress/train.py).
"""

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
from edgecompress.compress.training.config import FinetuneConfig, default_learning_rate


class AttentionLayers(StrEnum):
    LAST = "last"
    MAPPED = "mapped"


ATTENTION_LAYERS = choice_values(AttentionLayers)

# One (student layer, teacher layer) pair per mapped layer, 0-based encoder layer numbers.
LayerMap = tuple[tuple[int, int], ...]

# Training of a student: three epochs at the fine-tuning rate of a pretrained checkpoint (the
# student starts from trained weights: a teacher copy or a pruned checkpoint). Keys a recipe's
# [distill.train] table (or the distill command) leaves out come from here.
DISTILL_TRAIN = FinetuneConfig(epochs=3, learning_rate=default_learning_rate("hf"))


def parse_layer_map(text: str) -> LayerMap:
    """"0:1,1:3,2:5" (student:teacher) -> ((0, 1), (1, 3), (2, 5)); raises ValueError."""
    pairs = []
    for part in filter(str.strip, text.split(",")):
        student, sep, teacher = part.partition(":")
        if not sep or not student.strip().isdigit() or not teacher.strip().isdigit():
            raise ValueError(f"expected STUDENT:TEACHER,... such as 0:1,1:3,2:5; got {part!r}")
        pairs.append((int(student), int(teacher)))
    return tuple(pairs)


MAX_AUGMENT = 64  # copies per sentence: TinyBERT used 20; more is a typo, not a plan


@dataclass(frozen=True)
class TransferConfig:
    """A transfer set: extra rows that learn only from the teacher's soft targets (the logit KL
    and the hidden / attention losses; no cross-entropy), beside the labelled training rows.

    `augment` copies of every training sentence, TinyBERT-style (transfer.py): each word is
    replaced with probability `replace_rate` by one of its `neighbours` nearest training words by
    the teacher's input embedding, deleted with probability `delete_rate`, and with probability
    `mix_rate` a copy takes a span of another training sentence. Seeded by the training seed.
    """

    augment: int = option(0, help="Transfer set: augmented copies of each training sentence, "
                                  "taught by the teacher's soft targets only (0: none).")
    replace_rate: float = option(0.3, help="Transfer set: share of words replaced by a word "
                                           "whose teacher embedding is near.")
    neighbours: int = option(15, help="Transfer set: nearest training words a word may become.")
    delete_rate: float = option(0.1, help="Transfer set: share of words deleted.")
    mix_rate: float = option(0.2, help="Transfer set: share of copies given a span of another "
                                       "training sentence.")

    def __post_init__(self) -> None:
        check_types(self)
        if not 0 <= self.augment <= MAX_AUGMENT:
            raise FieldError("augment", f"must be between 0 and {MAX_AUGMENT}, got {self.augment}")
        for name in ("replace_rate", "delete_rate", "mix_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise FieldError(name, f"must be between 0 and 1, got {value}")
        if self.delete_rate >= 1.0:
            raise FieldError("delete_rate", "must be below 1 (a copy would have no words)")
        if self.neighbours < 1:
            raise FieldError("neighbours", f"must be >= 1, got {self.neighbours}")

    @property
    def active(self) -> bool:
        return self.augment > 0


@dataclass(frozen=True)
class DistillConfig:
    """Loss weights and training budget. A weight of 0 switches that loss off.

    `embedding_*_weight` train a sentence encoder on its teacher's mean-pooled embeddings (the
    logit losses `kd_weight` / `ce_weight` are then skipped: such a teacher has no logits).
    `layer_map` pairs student layers with teacher layers for the hidden-state and attention
    losses (None: derived from the student, see students.default_layer_map). `eval_every` is in
    steps (0: evaluate on dev only at the end of each epoch); `patience` is the number of dev
    evaluations without improvement before stopping early (0: never). `transfer` adds a
    transfer set (TransferConfig: rows taught by the teacher's soft targets only).
    """

    train: FinetuneConfig = option(default_factory=lambda: DISTILL_TRAIN,
                                   help="Optimisation settings (FinetuneConfig).")
    temperature: float = option(2.0, help="Softmax temperature of the logit distillation.")
    kd_weight: float = option(1.0, help="Weight of the teacher-logit KL loss.")
    ce_weight: float = option(0.5, help="Hard-label cross-entropy weight.")
    hidden_weight: float = option(0.0, help="Hidden-state MSE weight (pairs: layer_map).")
    attention_weight: float = option(0.0, help="Attention-distribution KL weight.")
    # sentence-encoder teachers: the student's mean-pooled embedding against the teacher's
    embedding_cosine_weight: float = option(0.0, help="Sentence encoders: 1 - cosine to the "
                                                      "teacher's embedding.")
    embedding_mse_weight: float = option(0.0, help="Sentence encoders: embedding MSE.")
    attention_layers: str = option("last", choices=AttentionLayers,
                                   help="Attention loss on the last layer or the mapped ones.")
    layer_map: LayerMap | None = option(None, parse=parse_layer_map,
                                        help="STUDENT:TEACHER layer pairs, e.g. 0:1,1:3,2:5 "
                                             "(default: spread over the teacher).")
    eval_every: int = option(0, help="Dev evaluation every N steps (0: once per epoch).")
    patience: int = option(0, help="Stop after N dev evaluations without gain (0: never).")
    max_minutes: float | None = option(None, help="Stop after this much training time (a "
                                                  "rerun continues).")
    transfer: TransferConfig = option(default_factory=TransferConfig,
                                      help="Transfer set (TransferConfig).")

    def __post_init__(self) -> None:
        check_types(self)
        if self.train.learning_rate is None:  # library callers: the students' default rate
            object.__setattr__(self, "train", replace(self.train,
                                                      learning_rate=DISTILL_TRAIN.learning_rate))
        if not self.temperature > 0:
            raise FieldError("temperature", f"must be > 0, got {self.temperature}")
        weights = {"kd_weight": self.kd_weight, "ce_weight": self.ce_weight,
                   "hidden_weight": self.hidden_weight, "attention_weight": self.attention_weight,
                   "embedding_cosine_weight": self.embedding_cosine_weight,
                   "embedding_mse_weight": self.embedding_mse_weight}
        for name, value in weights.items():
            if value < 0:
                raise FieldError(name, f"must be >= 0, got {value}")
        if not any(weights.values()):
            raise FieldError("kd_weight", "every loss weight is 0: nothing to train on")
        check_choice("attention_layers", self.attention_layers, AttentionLayers)
        if self.layer_map is not None:
            _check_layer_map(self.layer_map)
        if self.eval_every < 0 or self.patience < 0:
            raise FieldError("eval_every" if self.eval_every < 0 else "patience",
                             f"must be >= 0, got {min(self.eval_every, self.patience)}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise FieldError("max_minutes", f"must be > 0, got {self.max_minutes}")

    @property
    def needs_hidden(self) -> bool:
        return self.hidden_weight > 0

    @property
    def needs_attention(self) -> bool:
        return self.attention_weight > 0

    @property
    def needs_embedding(self) -> bool:
        return self.embedding_cosine_weight > 0 or self.embedding_mse_weight > 0

    def to_json(self) -> dict:
        data = asdict(self)
        data["layer_map"] = None if self.layer_map is None else [list(p) for p in self.layer_map]
        if not self.needs_embedding:  # absent when unused: earlier fingerprints still hold
            data.pop("embedding_cosine_weight")
            data.pop("embedding_mse_weight")
        if not self.transfer.active:  # absent when unused: earlier fingerprints still hold
            data.pop("transfer")
        return data

    def fingerprint(self, *extra: str) -> str:
        """Hash of everything that decides the training trajectory (+ model/data identity).

        `max_minutes` is left out: a time budget stops a run, it does not change where the run
        goes, so a rerun with a larger budget resumes from the checkpoint.
        """
        data = self.to_json()
        data.pop("max_minutes")
        payload = json.dumps([data, *extra], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def _check_layer_map(layer_map: LayerMap) -> None:
    if not layer_map:
        raise ValueError("layer_map must name at least one (student, teacher) pair")
    students = [s for s, _ in layer_map]
    if len(set(students)) != len(students):
        raise ValueError(f"layer_map maps a student layer twice: {list(layer_map)}")
    if any(s < 0 or t < 0 for s, t in layer_map):
        raise ValueError(f"layer_map layers must be >= 0, got {list(layer_map)}")
