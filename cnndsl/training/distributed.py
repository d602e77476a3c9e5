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


PROCESS_BYTES = 400 << 20  # what one training process takes before its data and network: torch, its threads


def check_count(nproc: int, device: str = "auto", each: int = 0) -> None:
    """Refuses more processes than this machine has devices for (GPUs, else processors), or memory for (each
    process takes PROCESS_BYTES and `each` more): 1,000 processes on two cores took 14.5 GB before failing."""
    from cnndsl import memory
    from cnndsl.errors import UsageError

    gpus = _gpus() if device in ("auto", "cuda") or device.startswith("cuda:") else 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    have, what = (gpus, f"{gpus} GPU{'s' * (gpus != 1)}") if gpus else (cpus, f"{cpus} processor{'s' * (cpus != 1)}")
    if nproc > have:
        raise UsageError(f"--nproc {nproc}: this machine has {what}, and each process trains on one of them",
                         hint=f"use --nproc {have} or fewer; on several machines start torchrun yourself "
                         "(see docs/training.md)")
    memory.ensure_fits(nproc * (PROCESS_BYTES + each), f"{nproc} training processes",
                       "start fewer processes (--nproc)")


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launch(nproc: int, argv: list[str], device: str = "auto", env: dict[str, str] | None = None) -> int:
    """Runs `cnndsl train` in `nproc` processes under torchrun, when the machine has room for them, with `env` added
    to their environment; returns torchrun's exit code."""
    check_count(nproc, device)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cnndsl.cli", *argv]
    return subprocess.call(cmd, env={**os.environ, **env} if env else None)
