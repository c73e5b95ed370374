"""Distillation of a decoder student (typically a pruned one) from its teacher (the reference) on
training text: forward KL(teacher || student) of next-token distributions over the full
vocabulary at a temperature (scaled by T², Hinton et al.), optionally next-token cross-entropy
and a hidden-state loss between each kept layer's output and the teacher layer it was.

Data: the training texts are joined with blank lines into one token stream (as metrics.py joins
held-out text) and cut into sequences of `context` tokens (BOS first when the tokenizer adds
one); step s reads `batch_size` sequences of a seeded permutation per pass (pure function of
seed and step, so a resumed run reads what an uninterrupted one would). Training text must share
no text with the held-out splits (`check_disjoint`).

Resume follows the encoder path (training/train.py): a checkpoint every `checkpoint_every` steps
in a hidden sibling `.<out>.ckpt` (safetensors weights, optimizer / scheduler / RNG state, JSON
progress with a fingerprint of config and inputs); a rerun after kill -9 continues from it and
ends with the same weights as an uninterrupted run. `max_minutes` stops early and keeps the
checkpoint; a rerun goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecompress.compress.llm.config import LMDistillConfig
from edgecompress.compress.llm.load import LoadedLM, save_lm
from edgecompress.compress.llm.metrics import leading_tokens
from edgecompress.compress.training.train import (
    CHECKPOINT_PROGRESS,
    load_checkpoint,
    make_optimizer,
    save_checkpoint,
)
from edgecompress.errors import UserError
from edgecompress.fsutil import atomic_directory, atomic_write_json

__all__ = ["DISTILL_REPORT", "LMDistillConfig", "LMDistillRun", "check_disjoint",
           "distill_checkpoint", "distill_lm", "hidden_pairs", "training_sequences"]

DISTILL_REPORT = "distill_report.json"

# (step, steps, {"loss", "kd", ...})
StepCallback = Callable[[int, int, dict], None]


def check_disjoint(train: Sequence[str], held_out: Sequence[str], names: tuple[str, str]) -> None:
    """UserError when a training text is also a held-out text (perplexity and KL would be
    measured on what the student was trained on)."""
    shared = set(train) & set(held_out)
    if shared:
        raise UserError(f"{len(shared)} texts of {names[0]} are also in {names[1]} (first: "
                        f"{next(iter(sorted(shared)))[:60]!r}): train on text the evaluation "
                        "never sees")


def training_sequences(tokenizer, texts: Sequence[str], config: LMDistillConfig) -> torch.Tensor:
    """(N, context) token ids: `texts` joined with blank lines, cut at `max_train_tokens`, in
    whole sequences. UserError when the text holds fewer than one batch of them."""
    bos = leading_tokens(tokenizer)
    span = config.context - len(bos)
    limit = config.max_train_tokens
    stream: list[int] = []
    separator = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    for text in texts:
        if stream:
            stream += separator
        stream += tokenizer(text, add_special_tokens=False)["input_ids"]
        if limit is not None and len(stream) >= limit:
            break
    n = len(stream) // span if limit is None else min(len(stream) // span,
                                                      limit // config.context)
    if n < config.batch_size:
        raise UserError(f"the training text holds {len(stream)} tokens: fewer than one batch of "
                        f"{config.batch_size} sequences of {config.context}")
    rows = [bos + stream[i * span:(i + 1) * span] for i in range(n)]
    return torch.tensor(rows, dtype=torch.long)


def batch_indices(n: int, config: LMDistillConfig, step: int) -> np.ndarray:
    """Sequences of step `step`: a seeded permutation per pass over the `n` sequences, cut into
    whole batches (the remainder of a pass is left out)."""
    per_pass = n // config.batch_size
    epoch, k = divmod(step, per_pass)
    order = np.random.default_rng([config.seed, epoch]).permutation(n)
    return order[k * config.batch_size:(k + 1) * config.batch_size]


def hidden_pairs(student_layers: int, teacher_layers: int,
                 kept: Sequence[int] | None) -> tuple[tuple[int, int], ...]:
    """(student, teacher) indices into `hidden_states` (i + 1 = output of layer i) for the
    hidden-state loss: student layer j was teacher layer kept[j] (a prune record's layers_kept;
    None: the same depth, layer for layer). The last layer is left out (transformers applies the
    final norm to the last entry only; the logit loss covers it). UserError when the map does not
    fit the two models."""
    if kept is None:
        if student_layers != teacher_layers:
            raise UserError(f"the student has {student_layers} layers and the teacher "
                            f"{teacher_layers}, and no prune_report.json says which teacher "
                            "layers it kept: the hidden-state loss needs that map")
        kept = range(student_layers)
    kept = list(kept)
    if len(kept) != student_layers or (kept and max(kept) >= teacher_layers):
        raise UserError(f"the prune record keeps layers {kept}, which does not fit a student "
                        f"of {student_layers} and a teacher of {teacher_layers} layers")
    return tuple((j + 1, kept[j] + 1) for j in range(student_layers - 1))


def _kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Token-mean KL(softmax(t/T) || softmax(s/T)) · T² over the full vocabulary; (N, V)."""
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature ** 2


def _hidden(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
            pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mean over pairs of ||s - t||² / ||t||² (scale-free: a decoder's hidden states grow with
    depth)."""
    terms = [(student[s] - teacher[t]).pow(2).mean() / teacher[t].pow(2).mean().clamp_min(1e-8)
             for s, t in pairs]
    return torch.stack(terms).mean()


@dataclass(frozen=True)
class LMDistillRun:
    """One distillation: the models (the student is trained in place), the training sequences,
    the hidden-state pairs (empty: no hidden loss) and where checkpoints go."""

    student: nn.Module
    teacher: nn.Module
    sequences: torch.Tensor  # (N, context)
    config: LMDistillConfig
    ckpt: Path
    identity: str = ""
    pairs: tuple[tuple[int, int], ...] = ()


def _step(run: LMDistillRun, optimizer, scheduler, step: int) -> dict:
    config = run.config
    ids = run.sequences[torch.from_numpy(batch_indices(len(run.sequences), config, step))]
    hidden = bool(config.hidden_weight and run.pairs)
    with torch.no_grad():
        teacher = run.teacher(input_ids=ids, use_cache=False, output_hidden_states=hidden)
    student = run.student(input_ids=ids, use_cache=False, output_hidden_states=hidden)
    s_logits = student.logits[:, :-1].reshape(-1, student.logits.shape[-1]).float()
    parts: dict[str, torch.Tensor] = {}
    if config.kd_weight:
        t_logits = teacher.logits[:, :-1].reshape(-1, teacher.logits.shape[-1]).float()
        parts["kd"] = _kd(s_logits, t_logits, config.temperature)
    if config.ce_weight:
        parts["ce"] = F.cross_entropy(s_logits, ids[:, 1:].reshape(-1))
    if hidden:
        parts["hidden"] = _hidden(student.hidden_states, teacher.hidden_states, run.pairs)
    weights = {"kd": config.kd_weight, "ce": config.ce_weight, "hidden": config.hidden_weight}
    loss = sum(weights[name] * value for name, value in parts.items())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.student.parameters(), 1.0)
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {"step": step + 1, "loss": round(float(loss.detach()), 6),
            **{k: round(float(v.detach()), 6) for k, v in parts.items()}, "lr": lr}


def distill_lm(run: LMDistillRun, on_step: StepCallback | None = None) -> dict:
    """Train `run.student` in place towards `run.teacher`; resume from `run.ckpt` when its
    fingerprint matches. Returns the training record (JSON-ready): steps, steps_done,
    resumed_from, tokens_seen, seconds (training time over every run up to now; this run's
    alone: seconds_this_run), stopped, first / final loss, history (one row per step:
    loss and its parts, learning rate)."""
    config = run.config
    student = run.student
    if config.freeze_embeddings:  # a tied output head is the same weight: kept too
        student.get_input_embeddings().requires_grad_(False)
    run.teacher.eval()
    torch.manual_seed(config.seed)
    optimizer, scheduler = make_optimizer(student, config, config.steps)
    fingerprint = config.fingerprint(run.identity, str(tuple(run.sequences.shape)))
    start = load_checkpoint(run.ckpt, student, optimizer, scheduler, fingerprint)
    progress = json.loads((run.ckpt / CHECKPOINT_PROGRESS).read_text()) if start else {}
    history, before = progress.get("history", []), progress.get("seconds", 0.0)
    began, done, stopped = time.perf_counter(), start, None
    student.train()
    for step in range(start, config.steps):
        row = _step(run, optimizer, scheduler, step)
        done = step + 1
        history.append(row)
        late = (config.max_minutes is not None
                and time.perf_counter() - began >= config.max_minutes * 60)
        if late and done < config.steps:
            stopped = "max-minutes"
        if stopped or (done % config.checkpoint_every == 0 and done < config.steps):
            save_checkpoint(run.ckpt, student, optimizer, scheduler, done, fingerprint,
                            extra={"history": history,
                                   "seconds": before + time.perf_counter() - began})
        if on_step:
            on_step(done, config.steps, row)
        if stopped:
            break
    student.eval()
    tokens = config.batch_size * run.sequences.shape[1]
    return {"steps": config.steps, "steps_done": done, "resumed_from": start,
            "tokens_seen": done * tokens, "train_sequences": int(run.sequences.shape[0]),
            "train_tokens": int(run.sequences.numel()),
            "seconds": round(before + time.perf_counter() - began, 2),
            "seconds_this_run": round(time.perf_counter() - began, 2), "stopped": stopped,
            "first_loss": history[0]["loss"] if history else None,
            "final_loss": history[-1]["loss"] if history else None, "history": history}


def checkpoint_dir(out: Path) -> Path:
    """Where a distillation into `out` keeps its resumable progress."""
    return out.parent / f".{out.name}.ckpt"


def distill_checkpoint(student: LoadedLM, teacher: nn.Module, sequences: torch.Tensor,
                       config: LMDistillConfig, out: Path, *, identity: str = "",
                       pairs: tuple[tuple[int, int], ...] = (), record: dict | None = None,
                       on_step: StepCallback | None = None) -> dict:
    """Distill `student` (in place) and write it to `out` atomically: a checkpoint the plain
    transformers class reloads (safetensors, config, tokenizer), the student's prune_report.json
    when it has one (the architecture is still that pruned model's; it names the registry
    source), and distill_report.json (`record` + config, identity, the training record). The
    progress folder is removed once training is complete; a `max_minutes` stop keeps it."""
    ckpt = checkpoint_dir(out)
    run = LMDistillRun(student.model, teacher, sequences, config, ckpt, identity, pairs)
    result = distill_lm(run, on_step)
    report = {**(record or {}), "config": config.to_json(), "identity": identity,
              "hidden_pairs": [list(p) for p in pairs], **result}
    prune_record = student.path / "prune_report.json"
    with atomic_directory(out) as tmp:
        save_lm(student, tmp)
        if prune_record.is_file():
            (tmp / prune_record.name).write_bytes(prune_record.read_bytes())
        atomic_write_json(tmp / DISTILL_REPORT, report)
    if not result["stopped"]:
        import shutil

        shutil.rmtree(ckpt, ignore_errors=True)
    return report


def distill_text(dataset: str, split: str, tokenizer, config: LMDistillConfig):
    """(training sequences, held-out split names): `split` of `dataset`, which must share no
    text with the dataset's other (non-empty) splits."""
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.compress.llm.sources import dataset_texts

    data = load_dataset(dataset)
    texts = dataset_texts(dataset, split)
    held_out = [name for name in data.splits if name != split and data.split(name).texts]
    check_disjoint(texts, [t for name in held_out for t in data.split(name).texts],
                   (f"{dataset} {split}", f"{dataset} {'/'.join(held_out)}"))
    return training_sequences(tokenizer, texts, config), held_out


def distill_pair(student: str, teacher: str, config: LMDistillConfig) -> dict:
    """Student and teacher checked without weights: same tokenizer and vocabulary, and the
    layer map of the hidden-state loss (from the student's prune_report.json). Returns their
    paths, the tokenizer, the layers kept, the pairs and `context`, the shorter of the two
    models' contexts (the caller checks config.context against it)."""
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.load import load_tokenizer, read_lm_config, resolve_lm
    from edgecompress.compress.llm.metrics import check_same_tokenizer
    from edgecompress.compress.llm.sources import PRUNE_REPORT

    path, teacher_path = resolve_lm(student), resolve_lm(teacher)
    shapes = shape_of(read_lm_config(path)), shape_of(read_lm_config(teacher_path))
    tokenizer = load_tokenizer(path)
    check_same_tokenizer(tokenizer, load_tokenizer(teacher_path), (student, teacher))
    if shapes[0].vocab != shapes[1].vocab:
        raise UserError(f"the student's output has {shapes[0].vocab} tokens and the teacher's "
                        f"{shapes[1].vocab}: KL compares the same token ids")
    record = path / PRUNE_REPORT
    kept = (json.loads(record.read_text(encoding="utf-8")).get("layers_kept")
            if record.is_file() else None)
    pairs = hidden_pairs(shapes[0].layers, shapes[1].layers, kept) if config.hidden_weight else ()
    return {"path": path, "teacher": teacher, "teacher_path": teacher_path,
            "tokenizer": tokenizer, "kept": kept, "pairs": pairs,
            "context": min(s.context for s in shapes)}
