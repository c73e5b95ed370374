"""Fine-tune an encoder with a classification head: the teacher every later stage measures against.

Training checkpoints every N steps (weights as safetensors, optimizer/scheduler/RNG state loaded
back with `weights_only=True`); a rerun after an interruption resumes from the last checkpoint and,
because batch order and dropout RNG are restored, ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgecompress.compress.core.config import FieldError, check_types
from edgecompress.compress.core.evaluate import tokenize
from edgecompress.compress.core.models import LoadedModel, save_model
from edgecompress.fsutil import atomic_directory, atomic_write_json


CHECKPOINT_WEIGHTS = "weights.safetensors"
CHECKPOINT_STATE = "state.pt"
CHECKPOINT_PROGRESS = "progress.json"

StepCallback = Callable[[int, int, float], None]  # (step, total_steps, loss)


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    max_length: int = 64
    seed: int = 0
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    checkpoint_every: int = 50
    max_steps: int | None = None

    def __post_init__(self) -> None:
        check_types(self)
        if self.epochs < 1:
            raise FieldError("epochs", f"must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise FieldError("batch_size", f"must be >= 1, got {self.batch_size}")
        if not 0 < self.learning_rate < 1:
            raise FieldError("learning_rate", f"must be in (0, 1), got {self.learning_rate}")
        if self.max_length < 8:
            raise FieldError("max_length", f"must be >= 8, got {self.max_length}")
        if not 0 <= self.warmup_ratio < 1:
            raise FieldError("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        if self.checkpoint_every < 1:
            raise FieldError("checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        if self.max_steps is not None and self.max_steps < 1:
            raise FieldError("max_steps", f"must be >= 1, got {self.max_steps}")

    def fingerprint(self, *extra: str) -> str:
        """Hash of the config (+ model/data identity) that a checkpoint must match to resume."""
        payload = json.dumps([asdict(self), *extra], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def total_steps(n_examples: int, config: FinetuneConfig) -> int:
    per_epoch = -(-n_examples // config.batch_size)
    steps = per_epoch * config.epochs
    return min(steps, config.max_steps) if config.max_steps else steps


def batch_indices(step: int, n_examples: int, config: FinetuneConfig) -> np.ndarray:
    """Example indices of global `step`: a fixed permutation per (seed, epoch)."""
    per_epoch = -(-n_examples // config.batch_size)
    epoch, within = divmod(step, per_epoch)
    order = np.random.default_rng(config.seed + epoch).permutation(n_examples)
    return order[within * config.batch_size:(within + 1) * config.batch_size]


def make_optimizer(module: torch.nn.Module, config: FinetuneConfig, steps: int):
    """AdamW (no decay on 1-d params) + linear warm-up/decay; returns (optimizer, scheduler)."""
    decay = [p for n, p in module.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in module.named_parameters() if p.ndim < 2]
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

    Returns {"steps", "resumed_from", "final_loss", "seconds"}.
    """
    module, tokenizer = loaded.module, loaded.tokenizer
    y = torch.tensor(labels, dtype=torch.long)
    steps = total_steps(len(texts), config)
    torch.manual_seed(config.seed)
    optimizer, scheduler = make_optimizer(module, config, steps)
    fingerprint = config.fingerprint(identity, str(len(texts)))
    start = load_checkpoint(ckpt, module, optimizer, scheduler, fingerprint)
    module.train()
    began, loss_value = time.perf_counter(), float("nan")
    for step in range(start, steps):
        idx = batch_indices(step, len(texts), config)
        batch = tokenize(tokenizer, [texts[i] for i in idx], config.max_length)
        logits = module(torch.from_numpy(batch["input_ids"]),
                        torch.from_numpy(batch["attention_mask"]))
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
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
            "seconds": round(time.perf_counter() - began, 2)}


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
