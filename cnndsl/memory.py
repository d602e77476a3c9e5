"""How much memory a network needs and how much the machine has, so that nothing is allocated in vain.

A spec such as `input 3x100000x100000` or `dense 1000000000000` checks fine (the checker only counts),
but building or training it would ask for terabytes. The figures of `cnndsl check` (weights and
activations per sample, float32) give the need before anything is allocated; it is compared with the
memory available now (RAM, or free memory on a CUDA device). `CNNDSL_MAX_MEMORY=SIZE` (e.g. `64G`) sets
the limit instead, for when the estimate or the detection is wrong.

This module does not import torch at import time: `Spec.build()` calls it before torch builds anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from cnndsl.errors import CnnError
from cnndsl.limits import parse_size

ENV = "CNNDSL_MAX_MEMORY"
OVERRIDE_HINT = f"{ENV}=SIZE (e.g. {ENV}=64G) sets the limit when this estimate is wrong"


class Figures(Protocol):
    """What `cnndsl check` measures (an `Analysis`, or the `Report` around it)."""

    weight_bytes: int
    buffer_bytes: int
    activation_bytes: int


@dataclass(frozen=True)
class Need:
    """Bytes a run of the network needs: its weights, training state, and activations for one batch."""

    weights: int  # parameters and buffers (batchnorm statistics), float32
    training: int  # gradients and optimizer state; 0 for inference
    activations: int  # every layer's output for one sample, as `cnndsl check` reports it
    batch: int
    copies: int = 1  # of the activations: 2 in training (outputs kept for the backward pass, and their gradients)

    @property
    def per_sample(self) -> int:
        return self.activations * self.copies

    @property
    def total(self) -> int:
        return self.weights + self.training + self.per_sample * self.batch

    def with_batch(self, batch: int) -> Need:
        return Need(self.weights, self.training, self.activations, batch, self.copies)

    def describe(self) -> str:
        parts = [f"{size(self.weights)} weights"]
        if self.training:
            parts.append(f"{size(self.training)} gradients and optimizer state")
        twice = " x 2 (kept for the backward pass, and their gradients)" if self.copies == 2 else ""
        parts.append(f"{size(self.activations)} activations per sample x {self.batch:,}{twice}")
        return " + ".join(parts)


def need(figures: Figures, batch: int = 1, training: bool = False) -> Need:
    """The estimate for a checked network (a `Report` or an `Analysis`: anything with its byte figures).

    Training keeps every layer's output for the backward pass and makes a gradient of each, and holds a
    gradient and up to two optimizer moments (Adam's) per parameter: 3x the parameters, 2x the activations.
    """
    weights = figures.weight_bytes + figures.buffer_bytes
    return Need(weights, 3 * figures.weight_bytes if training else 0, figures.activation_bytes, batch,
                2 if training else 1)


def size(n: float) -> str:
    """Bytes for people: `1.2 KiB`, `57.1 TiB`; beyond yobibytes, a power of ten."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"):
        if n < 1024 or unit == "YiB":
            break
        n /= 1024
    if unit == "bytes":
        return f"{int(n)} bytes"
    return f"{n:.1f} {unit}" if n < 1e6 else f"{n * 1024 ** 8:.2g} bytes"


def available(device: object = None) -> tuple[int | None, str]:
    """(bytes, where they come from) that a run may use now; None bytes where nothing can be measured.

    `device` is a torch.device or its type name; CUDA reports its free memory, everything else (the CPU,
    Apple's unified memory) the RAM that Linux says is available, within the container's limit.
    """
    if os.environ.get(ENV):
        return parse_size(os.environ[ENV], f"{ENV}={os.environ[ENV]}"), ENV
    kind = getattr(device, "type", device) or "cpu"
    if kind == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return free, f"free memory on {device}"
    return _ram(), "RAM"


def _ram() -> int | None:
    figures = [f for f in (_meminfo(), _cgroup_room()) if f is not None]
    if not figures:
        try:  # elsewhere (macOS): the physical memory
            figures.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(figures)


def _meminfo() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """What a cgroup v2 memory limit leaves (containers); None without one."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def ensure_fits(needed: int, what: str, hint: str, device: object = None) -> None:
    """Raises a CnnError saying what needs how much, when that is more than the limit."""
    have, where = available(device)
    if have is None or needed <= have:
        return
    limit = f"the {size(have)} that {ENV} allows" if where == ENV else f"the {size(have)} of {where} available"
    raise CnnError(f"{what} needs about {size(needed)}, more than {limit}", hint=f"{hint}\n{OVERRIDE_HINT}")


def check_weights(figures: Figures, device: object = None) -> None:
    """For `Spec.build()`: refuses a network whose weights alone do not fit, before torch allocates them."""
    weights = need(figures).weights
    ensure_fits(weights, f"building the network ({size(weights)} of weights)",
                "lower the layer widths (conv and dense sizes) or the input size", device)


def check_training(figures: Figures, batch: int, device: object = None, copies: int = 1) -> Need:
    """Refuses a training run whose batch does not fit; says which batch size would.

    `copies`: processes that share this memory (several processes training on one CPU).
    """
    estimate = need(figures, batch, training=True)
    have, _ = available(device)
    if have is None or estimate.total * copies <= have:
        return estimate
    fits = largest_batch(estimate, have // copies)
    lower = (f"--batch-size {fits} fits; or lower" if fits else "even --batch-size 1 does not fit: lower")
    processes = f" in each of {copies} processes" if copies > 1 else ""
    ensure_fits(estimate.total * copies, f"training with batches of {batch:,}{processes} ({estimate.describe()})",
                f"{lower} the input size or the layer widths", device)
    return estimate


def check_inference(figures: Figures, batch: int, device: object = None) -> int:
    """The largest batch up to `batch` that fits for eval and predict; refuses when not even one does."""
    estimate = need(figures, batch)
    have, _ = available(device)
    if have is None or estimate.total <= have:
        return batch
    fits = largest_batch(estimate, have)
    if fits:
        return fits
    ensure_fits(estimate.with_batch(1).total, f"running the network on one image ({estimate.with_batch(1).describe()})",
                "lower the input size or the layer widths", device)
    return 1


def largest_batch(estimate: Need, have: int) -> int:
    """The largest batch size (0 if none) with which `estimate` stays within `have` bytes."""
    room = have - estimate.weights - estimate.training
    if room <= 0:
        return 0
    return min(estimate.batch, room // max(1, estimate.per_sample))
