"""One pass over a split: training when given an optimizer, else evaluation (validation, test, `eval`).

Batches are index slices of tensors already on the device, so a pass does no per-sample Python work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cnndsl.data.datasets import Split
from cnndsl.training import distributed
from cnndsl.training.augment import Augment
from cnndsl.training.progress import Progress


@dataclass
class Batches:
    """How training batches are handled beyond forward, loss and step."""

    augment: Augment | None = None
    generator: object = None  # draws the augmentations
    clip: float = 0.0
    lr: Callable[[int], float] | None = None  # the learning rate for each step of the epoch
    amp: bool = False
    world: distributed.World = field(default_factory=distributed.World)


def run_epoch(forward, split: Split, batch_size: int, loss_fn, optimizer=None, generator=None,
              progress: Progress | None = None, how: Batches | None = None) -> tuple[float, float]:
    """Mean loss and accuracy over a split; trains when an optimizer is given.

    Sums stay on the device and are read once at the end, so batches run without waiting for the
    device; a loss that is not finite is caught then, with the step where it first happened.
    """
    import torch

    how = how or Batches()
    device = split.y.device
    order = None
    if optimizer is not None:  # each process trains on its share of the same shuffled order
        order = torch.randperm(len(split), generator=generator, device="cpu")
        order = order[how.world.rank::how.world.size].to(device)
    n = len(split) if order is None else len(order)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16,
                              enabled=how.amp)
    with torch.set_grad_enabled(optimizer is not None):
        for step, start in enumerate(range(0, n, batch_size)):
            index = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            x, y = split.x[index], split.y[index]
            if optimizer is not None and how.augment:
                x = how.augment(x, how.generator)
            with autocast:
                logits = forward(x)
                loss = loss_fn(logits.float(), y)
            if optimizer is not None:
                _step(optimizer, loss, how, step)
                bad = (first_bad < 0) & ~torch.isfinite(loss.detach())
                first_bad = torch.where(bad, torch.full_like(first_bad, step), first_bad)
            total_loss += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            if progress:
                progress.update(step + 1, total_loss, correct, min(start + batch_size, n))
    count = torch.tensor(n, device=device)
    if optimizer is not None:
        distributed.all_sum(total_loss, correct, count)
    if int(first_bad) >= 0:
        raise NonFinite(int(first_bad))
    return total_loss.item() / max(1, int(count)), correct.item() / max(1, int(count))


def _step(optimizer, loss, how: Batches, step: int) -> None:
    import torch

    if how.lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = how.lr(step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if how.clip:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, how.clip)
    optimizer.step()


def predictions(forward, split: Split, batch_size: int):
    """The predicted class of every example of a split."""
    import torch

    with torch.no_grad():
        return torch.cat([forward(split.x[i:i + batch_size]).argmax(1) for i in range(0, len(split), batch_size)])


class NonFinite(Exception):
    """A loss that became NaN or infinite, at `step` of the epoch."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step
