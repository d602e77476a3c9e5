"""Several processes, one engine: PyTorch DistributedDataParallel under torchrun.

`cnndsl train --nproc N` starts `torchrun --standalone --nproc-per-node N` (a rendezvous on this
machine); on several machines, start `python -m torch.distributed.run` yourself with its own
rendezvous options and the same `cnndsl.cli train ...` arguments. Each process trains on its share of
every epoch's shuffled order; gradients are averaged by DDP; only rank 0 logs and writes files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """This process's place, from torchrun's environment (one process without it)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def start(device) -> World:
    """Joins the process group when launched by torchrun: gloo on the CPU, NCCL on GPUs."""
    import torch.distributed as dist

    here = world()
    if here.size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            import torch

            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return here


def device_for(name: str):
    """Each process on a GPU of its own (LOCAL_RANK) when training on CUDA."""
    import torch

    if world().size > 1 and (name == "cuda" or (name == "auto" and torch.cuda.is_available())):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return None


def all_sum(*values):
    """Sums tensors over the processes (unchanged in a single process)."""
    import torch.distributed as dist

    if dist.is_initialized():
        for v in values:
            dist.all_reduce(v)
    return values


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def finish() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def launch(nproc: int, argv: list[str]) -> int:
    """Runs `cnndsl train` in `nproc` processes under torchrun; returns its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cnndsl.cli", *argv]
    return subprocess.call(cmd)
