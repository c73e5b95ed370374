"""Distillation on several processes: `torchrun --nproc-per-node N edgecompress distill ...`.

torchrun sets RANK / WORLD_SIZE / MASTER_ADDR; `World.from_env()` joins the process group
(gloo: CPUs, also across machines) and every rank then runs the same loop on its shard of each
global batch. The student is wrapped in DistributedDataParallel, which averages gradients, and
each rank's loss is weighted by its shard's share of the batch, so N processes take the same
optimizer step as one process seeing the whole batch (exactly, for losses that are means over
rows: logit KD and cross-entropy). Rank 0 alone writes checkpoints, the best student and the
output; every rank resumes from the same checkpoint files. Without torchrun (WORLD_SIZE unset
or 1) nothing here changes the single-process loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @classmethod
    def from_env(cls) -> World:
        """The world torchrun describes; joins its process group on first use."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    @staticmethod
    def launched_main() -> bool:
        """Whether this process is rank 0 of its launch (True without torchrun)."""
        return int(os.environ.get("RANK", "0")) == 0

    def close(self) -> None:
        """Leave the process group (at the end of a distributed run)."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch (length-sorted batches stay so)."""
        return np.array_split(idx, self.size)[self.rank] if self.distributed else idx

    def loss_scale(self, shard: int, total: int) -> float:
        """Weight of a shard's mean loss so that DDP's gradient average equals the gradient of
        the mean over the whole batch: shard / total * size."""
        return shard / total * self.size if self.distributed else 1.0

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """`module` under DistributedDataParallel (gradients all-reduced in backward)."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks, in place (the tensor itself when alone)."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written what the others read)."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def seed_step(self, seed: int, step: int) -> None:
        """Dropout on several ranks: each step's RNG from (seed, step, rank), so a resumed run
        draws what an uninterrupted one would without per-rank RNG files."""
        if self.distributed:
            torch.manual_seed((seed * 1_000_003 + step) * 1009 + self.rank)
