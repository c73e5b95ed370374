"""Students: where they come from, whether they fit the teacher, and what their layers map to.

A student spec is one of
- a checkpoint directory, e.g. the output of `edgecompress prune` (non-uniform heads/FFN load
  through the loader; its prune.json tells which teacher layers it kept);
- `layers:1,3,5` — a copy of the teacher keeping those encoder layers (layer dropping through
  prune.keep_layers), so each student layer starts as the teacher layer it maps to;
- `fresh:layers=3,hidden=192,heads=6,ffn=768` — a randomly initialised BERT of that shape
  (unnamed keys keep the teacher's values) with the teacher's tokenizer and labels.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgecompress.compress.distill.config import DistillConfig, LayerMap
from edgecompress.compress.distill.features import has_attention_probs
from edgecompress.compress.distill.losses import EMBEDDING_PROJECTION, LossPlan
from edgecompress.compress.models.arch import (
    blocks,
    family_of,
    layers,
    shared_layers,
    word_embedding,
)
from edgecompress.compress.models.loading import (
    ClassifierModule,
    LoadedModel,
    MeanPoolingModule,
    load_model,
)
from edgecompress.compress.prune.surgery import keep_layers
from edgecompress.errors import UserError

_TASK_WORDS = {"classification": "classifier", "embedding": "sentence encoder"}
FRESH_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size",
              "heads": "num_attention_heads", "ffn": "intermediate_size"}


@dataclass(frozen=True)
class Student:
    loaded: LoadedModel
    origin: str  # "checkpoint" | "layers" | "fresh"
    layer_map: LayerMap  # default (student layer, teacher layer) pairs for this student


def build_student(spec: str, teacher: LoadedModel) -> Student:
    """The student `spec` names (see the module docstring); raises UserError for a bad spec."""
    if spec.startswith("layers:"):
        kept = _ints(spec[len("layers:"):], spec)
        loaded = copy.deepcopy(teacher)
        keep_layers(loaded, kept)  # UserError for layers the teacher lacks
        return Student(loaded, "layers", tuple(enumerate(sorted(set(kept)))))
    if spec.startswith("fresh:"):
        loaded = _fresh(spec[len("fresh:"):], teacher)
        return Student(loaded, "fresh", default_layer_map(depth(loaded), depth(teacher)))
    loaded = load_model(spec, task=teacher.task)
    kept = _kept_layers(Path(spec))
    n_student = depth(loaded)
    pairs = (tuple(enumerate(kept)) if kept and len(kept) == n_student
             else default_layer_map(n_student, depth(teacher)))
    return Student(loaded, "checkpoint", pairs)


def _ints(text: str, spec: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"student spec {spec!r}: expected comma-separated layer numbers") from None
    if not values:
        raise UserError(f"student spec {spec!r} names no layers")
    return values


def _kept_layers(path: Path) -> list[int] | None:
    """Teacher layers a prune-stage checkpoint kept, from its prune.json (None if unknown)."""
    manifest = path / "prune.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("layers", {}).get("kept")


def fresh_overrides(text: str) -> dict[str, int]:
    """`layers=3,hidden=192` -> {"num_hidden_layers": 3, "hidden_size": 192}; UserError for an
    unknown key, a non-integer or a value below 1."""
    overrides = {}
    for part in filter(str.strip, text.split(",")):
        key, sep, value = (x.strip() for x in part.partition("="))
        if not sep or key not in FRESH_KEYS or not value.isdigit():
            raise UserError(f"fresh student: expected keys {', '.join(FRESH_KEYS)} as key=int, "
                            f"got {part!r}")
        if int(value) < 1:
            raise UserError(f"fresh student: {key} must be >= 1, got {int(value)}")
        overrides[FRESH_KEYS[key]] = int(value)
    return overrides


def check_spec(spec: str) -> None:
    """Raise UserError for a student spec that cannot be right whatever the teacher (checked
    before any model is loaded)."""
    if spec.startswith("layers:"):
        _ints(spec[len("layers:"):], spec)
    elif spec.startswith("fresh:"):
        fresh_overrides(spec[len("fresh:"):])
    elif not Path(spec).is_dir():
        raise UserError(f"student {spec!r}: not a checkpoint directory, 'layers:1,3,5' or "
                        "'fresh:layers=3,hidden=192,heads=6,ffn=768'")


def _fresh(text: str, teacher: LoadedModel) -> LoadedModel:
    """A random BERT with the teacher's config except the named keys."""
    from transformers import AutoModelForSequenceClassification

    if teacher.kind != "hf":
        raise UserError("fresh students are built from an HF teacher's config")
    overrides = fresh_overrides(text)
    config = copy.deepcopy(teacher.module.hf.config)
    for key, value in overrides.items():
        setattr(config, key, value)
    _fit_layer_types(config)
    if config.hidden_size % config.num_attention_heads:
        raise UserError(f"fresh student: hidden {config.hidden_size} is not divisible by "
                        f"{config.num_attention_heads} heads")
    if teacher.task == "embedding":  # a sentence encoder: the bare encoder, mean-pooled
        from transformers import AutoModel

        hf = AutoModel.from_config(config, attn_implementation="eager")
        return dataclasses.replace(teacher, module=MeanPoolingModule(hf).eval(), path=Path("."))
    hf = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    return dataclasses.replace(teacher, module=ClassifierModule(hf).eval(), path=Path("."))


def _fit_layer_types(config) -> None:
    """Per-layer attention kinds (ModernBERT's local / global `layer_types`) follow the teacher's
    pattern over the fresh depth: the config refuses to save when their count differs."""
    kinds = getattr(config, "layer_types", None)
    if isinstance(kinds, list) and kinds and len(kinds) != config.num_hidden_layers:
        config.layer_types = [kinds[i % len(kinds)] for i in range(config.num_hidden_layers)]


def default_layer_map(n_student: int, n_teacher: int) -> LayerMap:
    """Spread student layers evenly over the teacher's, the last onto the last (TinyBERT)."""
    return tuple((i, round((i + 1) * n_teacher / n_student) - 1) for i in range(n_student))


def check_compatible(teacher: LoadedModel, student: LoadedModel) -> None:
    """Raise UserError unless both read the same tokens, do the same task (classify or embed
    sentences) and predict the same labels."""
    if teacher.task != student.task:
        raise UserError(f"the teacher is a {_TASK_WORDS[teacher.task]} but the student a "
                        f"{_TASK_WORDS[student.task]}; distillation needs the same task")
    if hasattr(teacher.tokenizer, "encode_examples"):  # image models: the same pixels in
        if teacher.tokenizer != student.tokenizer:
            raise UserError(f"teacher and student read images differently ({teacher.tokenizer} "
                            f"vs {student.tokenizer}); distillation needs the same inputs")
    else:
        _check_vocabulary(teacher, student)
    if tuple(teacher.labels) != tuple(student.labels):
        raise UserError(f"teacher labels {list(teacher.labels)} differ from student labels "
                        f"{list(student.labels)}")


def _check_vocabulary(teacher: LoadedModel, student: LoadedModel) -> None:
    t_vocab = word_embedding(teacher).num_embeddings
    s_vocab = word_embedding(student).num_embeddings
    if t_vocab != s_vocab or teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        raise UserError(f"teacher and student use different vocabularies (embedding rows "
                        f"{t_vocab} vs {s_vocab}, tokenizer sizes {len(teacher.tokenizer)} vs "
                        f"{len(student.tokenizer)}); distillation needs the same tokens")


def check_layer_map(pairs: LayerMap, n_student: int, n_teacher: int) -> None:
    """Raise UserError when a pair names a layer that does not exist."""
    for s, t in pairs:
        if not 0 <= s < n_student:
            raise UserError(f"layer map names student layer {s}, but the student has "
                            f"{n_student} layers (0..{n_student - 1})")
        if not 0 <= t < n_teacher:
            raise UserError(f"layer map names teacher layer {t}, but the teacher has "
                            f"{n_teacher} layers (0..{n_teacher - 1})")


def resolve_plan(teacher: LoadedModel, student: Student, config: DistillConfig) -> LossPlan:
    """Validate the layer map against both models and decide which pairs each loss uses.

    Raises UserError for a map naming missing layers, or when every enabled loss is skipped.
    """
    n_s, n_t = depth(student.loaded), depth(teacher)
    pairs = config.layer_map or student.layer_map
    check_layer_map(pairs, n_s, n_t)
    notes: list[str] = []
    hidden = pairs if config.needs_hidden else ()
    attention: tuple = ()
    if config.needs_attention:
        attention = _attention_pairs(teacher, student.loaded, config, pairs, notes)
    logits, embedding = _output_losses(teacher, config, notes)
    skipped_all = (not (logits and (config.kd_weight or config.ce_weight))
                   and not embedding and not hidden and not attention)
    if skipped_all:
        raise UserError("every enabled loss was skipped (" + "; ".join(notes) + ")")
    return LossPlan(tuple(hidden), tuple(attention), tuple(notes), logits, embedding)


def _output_losses(teacher: LoadedModel, config: DistillConfig,
                   notes: list[str]) -> tuple[bool, bool]:
    """(logit losses apply, embedding losses apply): a classifier teacher has logits, a
    sentence encoder a mean-pooled embedding; the other kind's losses are skipped, noted."""
    encoder = teacher.task == "embedding"
    if encoder and (config.kd_weight or config.ce_weight):
        notes.append("logit losses (kd, ce) skipped: the teacher is a sentence encoder"
                     + ("" if config.needs_embedding else
                        "; set embedding_cosine_weight / embedding_mse_weight"))
    if not encoder and config.needs_embedding:
        notes.append("embedding losses skipped: the teacher is a classifier (they train "
                     "sentence encoders)")
    return not encoder, encoder and config.needs_embedding


def _attention_pairs(teacher, student, config, pairs, notes) -> tuple:
    if not (has_attention_probs(teacher) and has_attention_probs(student)):
        notes.append("attention transfer skipped: the plain encoder exposes no attention "
                     "probabilities")
        return ()
    n_s, n_t = depth(student), depth(teacher)
    wanted = ((n_s - 1, n_t - 1),) if config.attention_layers == "last" else pairs
    t_heads, s_heads = _heads(teacher), _heads(student)
    kept = tuple((s, t) for s, t in wanted if s_heads[s] == t_heads[t])
    for s, t in wanted:
        if s_heads[s] != t_heads[t]:
            notes.append(f"attention transfer skipped for student layer {s} -> teacher layer "
                         f"{t}: {s_heads[s]} vs {t_heads[t]} heads")
    return kept


def depth(loaded: LoadedModel) -> int:
    """Layers the encoder applies, one hidden state each (ALBERT applies its one shared layer
    this many times)."""
    if loaded.kind == "hf":
        return getattr(loaded.module.hf.config, family_of(loaded.module.hf).layer_count)
    return len(layers(loaded))


def _heads(loaded: LoadedModel) -> list[int]:
    """Heads per applied layer: from the weights, or the config's uniform count for a family
    whose layers cannot be cut (MobileBERT, ModernBERT)."""
    if loaded.kind == "hf" and family_of(loaded.module.hf).prunable:
        return [loaded.module.hf.config.num_attention_heads] * depth(loaded)
    heads = [b.heads for b in blocks(loaded)]
    return heads * depth(loaded) if shared_layers(loaded) else heads


def hidden_width(loaded: LoadedModel) -> int:
    """Width of the hidden states a layer outputs: the config's hidden_size (ALBERT, ELECTRA and
    MobileBERT factorise the embedding, so its width is not the layers')."""
    if loaded.kind == "hf":
        return loaded.module.hf.config.hidden_size
    return word_embedding(loaded).embedding_dim


def make_projections(teacher: LoadedModel, student: LoadedModel,
                     plan: LossPlan) -> nn.ModuleDict:
    """A learned Linear (student width -> teacher width) per hidden pair, and for the pooled
    embedding (losses.EMBEDDING_PROJECTION), when the widths differ."""
    t_width, s_width = hidden_width(teacher), hidden_width(student)
    projections = nn.ModuleDict()
    if s_width != t_width:
        for s, _ in plan.hidden_pairs:
            projections[str(s)] = nn.Linear(s_width, t_width, bias=False)
        if plan.embedding:
            projections[EMBEDDING_PROJECTION] = nn.Linear(s_width, t_width, bias=False)
    return projections


def count_non_embedding(loaded: LoadedModel) -> int:
    """Parameters outside the embedding tables (what layer dropping / pruning removes)."""
    owner = loaded.module.hf.base_model.embeddings if loaded.kind == "hf" else None
    embedding_ids = {id(p) for p in (owner.parameters() if owner is not None
                                     else [loaded.module.embedding.weight])}
    return sum(p.numel() for p in loaded.module.parameters() if id(p) not in embedding_ids)


def describe(loaded: LoadedModel) -> dict:
    """Layers, per-layer heads/FFN and parameter counts, for the manifest (a family whose
    layers cannot be cut reports its config's uniform FFN width)."""
    heads = _heads(loaded)
    if loaded.kind == "hf" and family_of(loaded.module.hf).prunable:
        ffn = [loaded.module.hf.config.intermediate_size] * len(heads)
    else:
        ffn = [b.ffn for b in blocks(loaded)]
        ffn = ffn * len(heads) if shared_layers(loaded) else ffn
    return {"layers": len(heads), "heads": heads, "ffn": ffn,
            "params": sum(p.numel() for p in loaded.module.parameters()),
            "non_embedding_params": count_non_embedding(loaded),
            "encoder_layer_params": sum(p.numel() for p in layers(loaded).parameters())}

