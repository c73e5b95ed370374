"""The distillation loop: teacher forward (no grad), student forward, weighted losses, AdamW.

It reuses fine-tuning's pieces (compress/train.py): the seeded batch order, the optimizer and
schedule, and the checkpoint format (safetensors weights, optimizer/scheduler/RNG state loaded
with `weights_only=True`). The loop's own state — best dev accuracy, evaluations without
improvement, history — rides in the checkpoint's progress file, so a rerun after kill -9 resumes
from the last checkpoint and ends with the same weights as an uninterrupted run. The best
student (by dev accuracy) is kept in a sibling directory and restored at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgecompress.compress.distill.config import DistillConfig
from edgecompress.compress.distill.distributed import World
from edgecompress.compress.distill.embedding import EmbeddingDev
from edgecompress.compress.distill.features import Features, forward_features
from edgecompress.compress.distill.losses import LossPlan, distill_loss
from edgecompress.compress.distill.students import hidden_width
from edgecompress.compress.evaluation.evaluate import predict, token_lengths, tokenize
from edgecompress.compress.models.loading import LoadedModel
from edgecompress.compress.training.train import (
    CHECKPOINT_PROGRESS,
    BatchOrder,
    as_tensors,
    autocast,
    freeze_embeddings,
    load_checkpoint,
    make_optimizer,
    resolve_precision,
    save_checkpoint,
    total_steps,
)
from edgecompress.fsutil import atomic_directory, atomic_write_json

UNLABELLED = -1  # a TrainData label: text the teacher labels (its argmax)
BEST_WEIGHTS = "student.safetensors"
BEST_PROGRESS = "best.json"

# (step, total_steps, loss, {"kd": ..., "dev_accuracy": ...})
ProgressCallback = Callable[[int, int, float, dict], None]


@dataclass(frozen=True)
class TrainData:
    """Training texts and class ids; -1 marks unlabelled text (the teacher's argmax is used),
    losses.SOFT_ONLY a transfer-set row (the teacher's soft targets only, no cross-entropy)."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if not self.texts:
            raise ValueError("no training texts")


class Trainable(nn.Module):
    """Everything the optimizer updates: the student and the hidden-state projections. Its
    forward is the student's (so DistributedDataParallel sees every training forward)."""

    def __init__(self, student: LoadedModel, projections: nn.ModuleDict):
        super().__init__()
        self.student = student.module
        self.projections = projections
        self.loaded = student  # not a Module: the same student, with its kind and tokenizer

    def forward(self, *inputs: torch.Tensor, hidden: bool, attentions: bool) -> Features:
        return forward_features(self.loaded, *inputs, hidden=hidden, attentions=attentions)


@dataclass
class LoopState:
    """What the loop knows besides the weights; JSON in the checkpoint's progress file."""

    best_accuracy: float = -1.0
    best_step: int = 0
    bad_evals: int = 0
    history: list = field(default_factory=list)  # [{"step", "dev_accuracy", "loss"}]
    stopped: str | None = None  # None | "early-stopping" | "max-minutes"

    @classmethod
    def from_checkpoint(cls, ckpt: Path) -> LoopState:
        """The saved state; a time-budget stop is not carried over, so a rerun goes on."""
        progress = json.loads((ckpt / CHECKPOINT_PROGRESS).read_text())
        state = cls(**progress.get("loop", {}))
        if state.stopped == "max-minutes":
            state.stopped = None
        return state


@dataclass(frozen=True)
class Feed:
    """What every step reads: the batch order, the resolved precision, labels and (with
    output-only losses) the teacher's output — logits or embedding — for every text."""

    order: BatchOrder
    precision: str
    labels: torch.Tensor
    cached: torch.Tensor | None


@dataclass(frozen=True)
class Run:
    """One distillation: the models, what to compare, the data and where checkpoints go."""

    teacher: LoadedModel
    student: LoadedModel
    projections: nn.ModuleDict
    plan: LossPlan
    config: DistillConfig
    data: TrainData
    ckpt: Path
    dev: tuple[tuple[str, ...], tuple[int, ...]] | None = None  # (texts, labels)
    identity: str = ""
    world: World = World()  # torchrun's processes (distributed.py); one process by default
    embedding_dev: EmbeddingDev | None = None  # a sentence encoder's dev set (embedding.py)

    @property
    def dev_metric(self) -> str:
        """What dev selection maximises: "accuracy", "spearman" or "teacher_cosine"."""
        return self.embedding_dev.metric if self.embedding_dev is not None else "accuracy"


def distill_train(run: Run, on_step: ProgressCallback | None = None) -> dict:
    """Train `run.student.module` (in place) towards the teacher; resume from `run.ckpt`.

    Returns {"steps", "steps_done", "resumed_from", "final_loss", "seconds", "stopped",
    "best_step", "best_dev_accuracy", "dev_metric", "best_dev_score", "history"}; the dev score
    is accuracy for a classifier, Spearman or mean teacher cosine for a sentence encoder.
    """
    config, train = run.config, run.config.train
    module = Trainable(run.student, run.projections)
    if train.freeze_embeddings:
        freeze_embeddings(run.student.module)
    if run.student.task == "embedding":
        _freeze_pooler(run.student)
    steps = total_steps(len(run.data.texts), train)
    torch.manual_seed(train.seed)  # dropout; a resumed run gets its RNG state from the checkpoint
    optimizer, scheduler = make_optimizer(module, train, steps)
    fingerprint = config.fingerprint(run.identity, str(len(run.data.texts)))
    start = load_checkpoint(run.ckpt, module, optimizer, scheduler, fingerprint)
    state = LoopState.from_checkpoint(run.ckpt) if start else LoopState()
    began, loss, done = time.perf_counter(), float("nan"), start
    feed = _feed(run)
    module.train()
    forward = run.world.wrap(module)
    for step in range(start, steps):
        run.world.seed_step(train.seed, step)
        loss, parts = _step(run, forward, optimizer, scheduler, step, feed)
        done = step + 1
        if _due_for_eval(run, done, steps):
            parts[f"dev_{run.dev_metric}"] = _evaluate(run, module, state, done, loss)
        if _out_of_time(run, began) and done < steps and not state.stopped:
            state.stopped = "max-minutes"
        if run.world.main and (state.stopped == "max-minutes" or (
                done % train.checkpoint_every == 0 and done < steps and not state.stopped)):
            save_checkpoint(run.ckpt, module, optimizer, scheduler, done, fingerprint,
                            extra={"loop": asdict(state)})
        if on_step:
            on_step(done, steps, loss, parts)
        if state.stopped:
            break
    module.eval()
    run.world.barrier()  # rank 0 has written the best student the others restore
    if state.best_step and state.stopped != "max-minutes":
        _restore_best(run, state)
    return {"steps": steps, "steps_done": done, "resumed_from": start, "final_loss": loss,
            "seconds": round(time.perf_counter() - began, 2), "stopped": state.stopped,
            "best_step": state.best_step or None,
            "best_dev_accuracy": state.best_accuracy if state.best_step and not
            run.embedding_dev else None, "dev_metric": run.dev_metric,
            "best_dev_score": state.best_accuracy if state.best_step else None,
            "history": state.history, "precision": feed.precision}


def _freeze_pooler(student: LoadedModel) -> None:
    """A mean-pooled sentence encoder never runs its [CLS] pooler: untrained, and unseen by
    DistributedDataParallel, which refuses parameters that get no gradient."""
    pooler = getattr(getattr(student.module, "hf", None), "pooler", None)
    if pooler is not None:
        pooler.requires_grad_(False)


def _feed(run: Run) -> Feed:
    train = run.config.train
    precision = resolve_precision(train.precision)
    lengths = token_lengths(run.student.tokenizer, run.data.texts, train.max_length)
    run.teacher.module.eval()
    output_only = not (run.plan.hidden_pairs or run.plan.attention_pairs)
    return Feed(BatchOrder(len(run.data.texts), train, lengths), precision,
                torch.tensor(run.data.labels, dtype=torch.long),
                teacher_logits(run, precision) if output_only else None)


def teacher_logits(run: Run, precision: str = "fp32", batch_size: int = 64) -> torch.Tensor:
    """Teacher outputs for every training text, computed once: logits (N, C), or the
    mean-pooled embeddings (N, H) of a sentence-encoder teacher.

    With output-only losses the teacher's per-step forward is the same every epoch (eval mode,
    no dropout), so it is done once, in length-sorted batches that carry little padding.
    """
    texts, world = run.data.texts, run.world
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    width = (len(run.teacher.labels) if run.teacher.task == "classification"
             else hidden_width(run.teacher))
    out = torch.zeros(len(texts), width)
    starts = range(0, len(order), batch_size)
    with torch.no_grad(), autocast(precision):
        for start in starts[world.rank::world.size]:  # ranks share the batches, then the sums
            idx = order[start:start + batch_size]
            batch = tokenize(run.teacher.tokenizer, [texts[i] for i in idx],
                             run.config.train.max_length)
            out[idx] = run.teacher.module(*as_tensors(batch, run.teacher.module)).float()
    return world.sum(out)


def _step(run: Run, module: nn.Module, optimizer, scheduler, step: int,
          feed: Feed) -> tuple[float, dict]:
    """One optimizer step on batch `step` (this rank's shard of it); returns (loss, {loss part:
    value}) over the whole batch. `module` is the Trainable, or it under DDP."""
    batch_idx = feed.order(step)
    idx = run.world.shard(batch_idx)
    batch = tokenize(run.student.tokenizer, [run.data.texts[i] for i in idx],
                     run.config.train.max_length)
    inputs = as_tensors(batch, run.student.module)  # (B, S) ids and mask, or (B, C, H, W)
    # (B, S) real tokens; None for images, where every patch token counts
    mask = torch.from_numpy(batch["attention_mask"]) if "attention_mask" in batch else None
    plan, hidden, attentions = run.plan, bool(run.plan.hidden_pairs), bool(run.plan.attention_pairs)
    with autocast(feed.precision):
        if feed.cached is not None:
            teacher = Features.of_output(feed.cached[torch.from_numpy(idx)], run.teacher.task)
        else:
            with torch.no_grad():
                teacher = forward_features(run.teacher, *inputs, hidden=hidden,
                                           attentions=attentions)
        student = module(*inputs, hidden=hidden, attentions=attentions)
    teacher, student = teacher.float(), student.float()  # the losses run in float32
    y = feed.labels[idx]
    if teacher.logits is not None:
        # unlabelled rows: the teacher's label; transfer rows (SOFT_ONLY) keep no label
        y = torch.where(y == UNLABELLED, teacher.logits.argmax(-1), y)
    loss, parts = distill_loss(student, teacher, y, mask, run.config, plan, run.projections)
    scale = run.world.loss_scale(len(idx), len(batch_idx))
    (loss * scale).backward()  # under DDP: gradients averaged over ranks = the batch's mean
    torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return _batch_mean(run.world, float(loss.detach()), parts, scale)


def _batch_mean(world: World, loss: float, parts: dict, scale: float) -> tuple[float, dict]:
    """The loss and its parts over the whole batch (each rank had its shard's)."""
    if not world.distributed:
        return loss, parts
    values = world.sum(torch.tensor([loss, *parts.values()], dtype=torch.float64) * scale)
    values = (values / world.size).tolist()
    return values[0], dict(zip(parts, values[1:]))


def _due_for_eval(run: Run, done: int, steps: int) -> bool:
    if run.dev is None and run.embedding_dev is None:
        return False
    every = run.config.eval_every or -(-len(run.data.texts) // run.config.train.batch_size)
    return done % every == 0 or done == steps


def _out_of_time(run: Run, began: float) -> bool:
    """Past --max-minutes; on several ranks, when any one is (so all stop at the same step)."""
    if run.config.max_minutes is None:
        return False
    late = time.perf_counter() - began >= run.config.max_minutes * 60
    return bool(run.world.sum(torch.tensor([float(late)])).item() > 0)


def _evaluate(run: Run, module: Trainable, state: LoopState, done: int, loss: float) -> float:
    """Dev score now (higher is better); keeps the best student on disk and decides early
    stopping."""
    if run.embedding_dev is not None:  # every rank scores the whole (small) set alike
        accuracy = run.embedding_dev.score(run.student, run.config.train.max_length)
        module.train()  # torch_runner switched it to eval
    else:
        accuracy = _dev_accuracy(run, module)
    state.history.append({"step": done, f"dev_{run.dev_metric}": accuracy, "loss": loss})
    if accuracy > state.best_accuracy:
        state.best_accuracy, state.best_step, state.bad_evals = accuracy, done, 0
        if run.world.main:
            _save_best(run, done)
    else:
        state.bad_evals += 1
        if run.config.patience and state.bad_evals >= run.config.patience:
            state.stopped = "early-stopping"
    return accuracy


def _dev_accuracy(run: Run, module: Trainable) -> float:
    """Accuracy on the labelled dev set, each rank predicting its share of it."""
    from edgecompress.targets import torch_runner

    world = run.world
    texts, labels = run.dev[0][world.rank::world.size], run.dev[1][world.rank::world.size]
    correct = 0.0
    if texts:
        logits = predict(torch_runner(run.student.module), run.student.tokenizer, list(texts),
                         max_length=run.config.train.max_length)
        correct = float(np.sum(logits.argmax(axis=1) == np.asarray(labels)))
    module.train()  # torch_runner switched it to eval
    return float(world.sum(torch.tensor([correct], dtype=torch.float64)).item()
                 / len(run.dev[0]))


def best_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".best")


def _save_best(run: Run, step: int) -> None:
    from safetensors.torch import save_file

    with atomic_directory(best_dir(run.ckpt)) as tmp:
        state = {k: v.detach().contiguous().clone()
                 for k, v in run.student.module.state_dict().items()}
        save_file(state, str(tmp / BEST_WEIGHTS))
        atomic_write_json(tmp / BEST_PROGRESS, {"step": step})


def _restore_best(run: Run, state: LoopState) -> None:
    from safetensors.torch import load_file

    directory = best_dir(run.ckpt)
    saved = json.loads((directory / BEST_PROGRESS).read_text())["step"]
    if saved != state.best_step:  # replay always rewrites it; a mismatch is a bug, not input
        raise RuntimeError(f"best student on disk is from step {saved}, expected "
                           f"{state.best_step}")
    run.student.module.load_state_dict(load_file(str(directory / BEST_WEIGHTS)))
