"""Fine-tune an encoder with a classification head: the teacher every later stage measures against.

Training checkpoints every N steps (weights as safetensors, optimizer/scheduler/RNG state loaded
back with `weights_only=True`); a rerun after an interruption resumes from the last checkpoint and,
since batch order and dropout RNG are restored, ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from edgecompress.compress.evaluation.evaluate import token_lengths, tokenize
from edgecompress.compress.models.loading import LoadedModel, save_model
from edgecompress.compress.training.config import FinetuneConfig
from edgecompress.fsutil import atomic_directory, atomic_write_json

CHECKPOINT_WEIGHTS = "weights.safetensors"
CHECKPOINT_STATE = "state.pt"
CHECKPOINT_PROGRESS = "progress.json"
BUCKET_WINDOW = 50  # batches per window that is sorted by length before it is cut into batches

StepCallback = Callable[[int, int, float], None]  # (step, total_steps, loss)


def as_tensors(batch: dict, module) -> tuple[torch.Tensor, ...]:
    """A tokenized (or image) batch as the positional tensors `module` takes, in its order."""
    from edgecompress.targets.inputs import module_inputs

    return tuple(torch.from_numpy(batch[name]) for name in module_inputs(module))


def total_steps(n_examples: int, config: FinetuneConfig) -> int:
    per_epoch = -(-n_examples // config.batch_size)
    steps = per_epoch * config.epochs
    return min(steps, config.max_steps) if config.max_steps else steps


class BatchOrder:
    """Example indices of each global step: a fixed permutation per (seed, epoch).

    With `lengths` (token counts), each window of BUCKET_WINDOW batches of the permutation is
    sorted by length before it is cut, and the epoch's batches are then shuffled: a batch holds
    sentences of similar length (little padding), every example is still seen once per epoch,
    and the order depends only on the seed, so a resumed run replays it exactly.
    """

    def __init__(self, n_examples: int, config: FinetuneConfig, lengths=None):
        self.n, self.config = n_examples, config
        self.lengths = None if lengths is None or not config.length_buckets else np.asarray(lengths)
        self.per_epoch = -(-n_examples // config.batch_size)
        self._epoch: tuple[int, list[np.ndarray]] | None = None

    def __call__(self, step: int) -> np.ndarray:
        epoch, within = divmod(step, self.per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, self._batches(epoch))
        return self._epoch[1][within]

    def _batches(self, epoch: int) -> list[np.ndarray]:
        size = self.config.batch_size
        rng = np.random.default_rng(self.config.seed + epoch)
        order = rng.permutation(self.n)
        if self.lengths is None:
            return [order[i:i + size] for i in range(0, self.n, size)]
        window = size * BUCKET_WINDOW
        batches = []
        for start in range(0, self.n, window):
            chunk = order[start:start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
        return [batches[i] for i in rng.permutation(len(batches))]


def resolve_precision(precision: str) -> str:
    """"fp32" or "bf16": what "auto" means on this host (native bf16 compute or not)."""
    if precision != "auto":
        return precision
    from edgecompress.targets.host import native_bf16

    return "bf16" if native_bf16() else "fp32"


def autocast(precision: str):
    """The forward-pass context of a resolved precision (bf16 autocast, or nothing)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def token_embedding(module: torch.nn.Module) -> torch.nn.Module | None:
    """The token (word) embedding of an HF-wrapped or plain encoder; None when it has none."""
    hf = getattr(module, "hf", None)
    return hf.get_input_embeddings() if hf is not None else getattr(module, "embedding", None)


def freeze_embeddings(module: torch.nn.Module) -> None:
    """Take the token embedding out of training (`requires_grad` off)."""
    embedding = token_embedding(module)
    if embedding is None:
        raise ValueError("freeze_embeddings: this model has no token embedding to freeze")
    embedding.requires_grad_(False)


def make_optimizer(module: torch.nn.Module, config: FinetuneConfig, steps: int):
    """AdamW (no decay on 1-d params) over the trainable parameters + linear warm-up/decay;
    returns (optimizer, scheduler)."""
    if config.learning_rate is None:
        raise ValueError("learning_rate is unresolved: pass config.for_model(kind)")
    trainable = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.learning_rate)
    warmup = max(1, int(steps * config.warmup_ratio))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to zero
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def save_checkpoint(ckpt: Path, module, optimizer, scheduler, step: int, fingerprint: str,
                    extra: dict | None = None) -> None:
    """Write weights, optimizer/scheduler/RNG state and progress (+ `extra`, JSON) atomically."""
    from safetensors.torch import save_file

    with atomic_directory(ckpt) as tmp:
        state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
        save_file(state, str(tmp / CHECKPOINT_WEIGHTS))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state()}, tmp / CHECKPOINT_STATE)
        atomic_write_json(tmp / CHECKPOINT_PROGRESS,
                          {**(extra or {}), "step": step, "fingerprint": fingerprint})


def load_checkpoint(ckpt: Path, module, optimizer, scheduler, fingerprint: str) -> int:
    """Restore a matching checkpoint; returns the step to resume at (0 when none matches)."""
    from safetensors.torch import load_file

    progress_file = ckpt / CHECKPOINT_PROGRESS
    if not progress_file.exists():
        return 0
    progress = json.loads(progress_file.read_text())
    if progress.get("fingerprint") != fingerprint:
        return 0
    module.load_state_dict(load_file(str(ckpt / CHECKPOINT_WEIGHTS)))
    state = torch.load(ckpt / CHECKPOINT_STATE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return int(progress["step"])


def train_classifier(loaded: LoadedModel, texts, labels, config: FinetuneConfig, ckpt: Path, *,
                     identity: str = "", on_step: StepCallback | None = None) -> dict:
    """Train `loaded.module` in place on (texts, labels); checkpoint to `ckpt`, resume from it.

    Returns {"steps", "resumed_from", "final_loss", "seconds", "precision"}.
    """
    module, tokenizer = loaded.module, loaded.tokenizer
    y = torch.tensor(labels, dtype=torch.long)
    steps = total_steps(len(texts), config)
    order = BatchOrder(len(texts), config, token_lengths(tokenizer, texts, config.max_length))
    precision = resolve_precision(config.precision)
    if config.freeze_embeddings:
        freeze_embeddings(module)
    torch.manual_seed(config.seed)
    optimizer, scheduler = make_optimizer(module, config, steps)
    fingerprint = config.fingerprint(identity, str(len(texts)))
    start = load_checkpoint(ckpt, module, optimizer, scheduler, fingerprint)
    module.train()
    began, loss_value = time.perf_counter(), float("nan")
    for step in range(start, steps):
        idx = order(step)
        batch = tokenize(tokenizer, [texts[i] for i in idx], config.max_length)
        with autocast(precision):
            logits = module(*as_tensors(batch, module))
        loss = torch.nn.functional.cross_entropy(logits.float(), y[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < steps:
            save_checkpoint(ckpt, module, optimizer, scheduler, step + 1, fingerprint)
        if on_step:
            on_step(step + 1, steps, loss_value)
    module.eval()
    return {"steps": steps, "resumed_from": start, "final_loss": loss_value,
            "seconds": round(time.perf_counter() - began, 2), "precision": precision}


def finetune(loaded: LoadedModel, texts, labels, config: FinetuneConfig, out: Path, *,
             identity: str = "", on_step: StepCallback | None = None) -> dict:
    """Train, then write a normal checkpoint directory to `out` atomically; returns the manifest.

    Checkpoints live in a hidden sibling `.<out>.ckpt` and are removed once `out` is complete.
    """
    ckpt = out.parent / f".{out.name}.ckpt"
    result = train_classifier(loaded, texts, labels, config, ckpt, identity=identity,
                              on_step=on_step)
    manifest = {"stage": "finetune", "config": asdict(config), "identity": identity,
                "n_train": len(texts), **result}
    with atomic_directory(out) as tmp:
        save_model(loaded, tmp)
        atomic_write_json(tmp / "finetune.json", manifest)
    shutil.rmtree(ckpt, ignore_errors=True)
    return manifest
