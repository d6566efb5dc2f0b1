"""Several processes, one model: PyTorch DDP under torchrun.

    torchrun --standalone --nproc-per-node 2 -m steer train ...

Every rank builds the same global batches (same seed) and trains on its own rows of each, so a lane
(and the drives it walks) belongs to one rank; DDP averages the gradients. The loss of a rank is
scaled so that the average over ranks is the loss of the whole global batch: a run on N processes
follows a 1-process run with the same global batch. Rank 0 alone validates, writes checkpoints and
logs; it tells the others the validation loss, so all stop together.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str = "cpu"  # where collectives put their tensors (NCCL needs them on the GPU)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def rows(self, batch: list) -> list:
        """This rank's share of a global batch: a contiguous block of rows (batches are padded to divide)."""
        per_rank, left = divmod(len(batch), self.size)
        if left:
            raise ValueError(f"a batch of {len(batch)} rows does not divide among {self.size} processes")
        return batch[self.rank * per_rank:(self.rank + 1) * per_rank]

    def sum(self, value: float) -> float:
        if self.size == 1:
            return value
        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total)

    def from_main(self, value: float) -> float:
        """Rank 0's value, on every rank."""
        if self.size == 1:
            return value
        shared = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(shared, 0)
        return float(shared)


def join(device: str) -> tuple[World, str]:
    """Join the process group torchrun started (where WORLD_SIZE > 1), and the device this rank uses:
    on GPUs, one per local rank."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return World(dist.get_rank(), size, device), device


def leave(world: World) -> None:
    """Leave together: a rank that tears its group down while rank 0 still writes the last checkpoint can
    abort at exit in gloo's worker threads (seen once in CI as a SIGABRT of rank 1)."""
    if world.size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
