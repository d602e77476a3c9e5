"""An epoch's two passes over the data: the training pass updates the weights; the evaluation pass measures
them without gradients (validation, test, `eval`). The loop calls both; `eval` only the second.

Batches are index slices of tensors already on the device, so a pass does no per-sample Python work. Sums
stay on the device and are read once at the end, so batches run without waiting for the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cnndsl.data.datasets import Split
from cnndsl.training import distributed
from cnndsl.training.accel import Amp, amp_for, to_device
from cnndsl.training.augment import Augment
from cnndsl.training.progress import Progress


@dataclass
class Batches:
    """How the training pass draws its batches, and what it does to each beyond forward, loss and step."""

    size: int
    shuffle: object  # a torch.Generator: each epoch's order of the examples
    augment: Augment | None = None
    augment_rng: object = None  # a torch.Generator: draws the augmentations
    clip: float = 0.0  # the gradients' largest norm (0: not clipped)
    lr: Callable[[int], float] | None = None  # the learning rate for each step of the epoch
    amp: Amp | bool = False  # training/accel.py's Amp (True: the device's mixed precision, as amp_for says)
    world: distributed.World = field(default_factory=distributed.World)
    # after each batch (step, running loss sum, correct, examples seen): True ends the epoch there (a callback's
    # model.stop_training); None when no callback watches batches
    after: Callable[[int, object, object, int], bool] | None = None
    device: object = None  # where the model is (None: where the data is); images held elsewhere come batch by batch


def train_pass(forward, split: Split, batches: Batches, loss_fn, optimizer,
               progress: Progress | None = None) -> tuple[float, float]:
    """Mean loss and accuracy over one pass of the training split in a shuffled order, stepping the optimizer
    after each batch. Each process trains on its share of the same order; the means are over them all. A pass
    that `batches.after` ends early has the means of the batches it trained.

    A loss that is not finite raises NonFinite, with the step where it first happened (read at the end).
    """
    import torch

    device = batches.device or split.y.device
    order = torch.randperm(len(split), generator=batches.shuffle, device="cpu")
    order = to_device(order[batches.world.rank::batches.world.size], split.y.device)
    sums = _Sums(device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    amp = _amp(batches.amp, device)
    seen = 0
    with torch.enable_grad():
        for step, start in enumerate(range(0, len(order), batches.size)):
            index = order[start:start + batches.size]
            x, y = _batch(split, index, device)
            if batches.augment:
                x = batches.augment(x, batches.augment_rng)
            with amp.autocast(device):
                logits = forward(x)
                loss = loss_fn(logits.float(), y)
            _update(optimizer, loss, batches, step, amp.scaler)
            bad = (first_bad < 0) & ~torch.isfinite(loss.detach())
            first_bad = torch.where(bad, torch.full_like(first_bad, step), first_bad)
            sums.add(loss, logits, y)
            seen = min(start + batches.size, len(order))
            if progress:
                progress.update(step + 1, sums.loss, sums.correct, seen)
            if batches.after and batches.after(step, sums.loss, sums.correct, seen):
                break
    count = torch.tensor(seen, device=device)
    distributed.all_sum(sums.loss, sums.correct, count)
    if int(first_bad) >= 0:
        raise NonFinite(int(first_bad))
    return sums.means(int(count))


def evaluate_pass(forward, split: Split, batch_size: int, loss_fn, amp: Amp | bool = False,
                  keep: list | None = None) -> tuple[float, float]:
    """Mean loss and accuracy over a split in its order, without gradients (each process sees all of it).
    `keep`, a list, receives each batch's scores (float32), for what else the run reads from them."""
    import torch

    sums = _Sums(split.y.device)
    amp = _amp(amp, split.y.device)
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
            with amp.autocast(split.y.device):
                logits = forward(x)
                loss = loss_fn(logits.float(), y)
            sums.add(loss, logits, y)
            if keep is not None:
                keep.append(logits.float())
    return sums.means(len(split))


def predictions(forward, split: Split, batch_size: int):
    """The predicted class of every example of a split."""
    import torch

    with torch.no_grad():
        return torch.cat([forward(split.x[i:i + batch_size]).argmax(1) for i in range(0, len(split), batch_size)])


class _Sums:
    """The loss and the correct predictions of a pass so far, summed on the device."""

    def __init__(self, device):
        import torch

        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)

    def add(self, loss, logits, y) -> None:
        self.loss += loss.detach() * len(y)
        self.correct += (logits.argmax(1) == y).sum()

    def means(self, count: int) -> tuple[float, float]:
        return self.loss.item() / max(1, count), self.correct.item() / max(1, count)


def _amp(amp: Amp | bool, device) -> Amp:
    return amp if isinstance(amp, Amp) else amp_for(bool(amp), device)


def _batch(split: Split, index, device):
    """The batch's images and labels on `device`: slices where the split is there, else copies (pinned on CUDA)."""
    x, y = split.x[index], split.y[index]
    return to_device(x, device), to_device(y, device)


def _update(optimizer, loss, batches: Batches, step: int, scaler=None) -> None:
    """One optimizer step on the batch's loss, at the step's learning rate, with the gradients clipped if asked.
    With a GradScaler (float16) the loss is scaled before backward and the gradients unscaled before clipping;
    the scaler skips the step whose gradients overflowed, and lowers its scale."""
    import torch

    if batches.lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = batches.lr(step)
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    if batches.clip:
        if scaler:
            scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, batches.clip)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


class NonFinite(Exception):
    """A loss that became NaN or infinite, at `step` of the epoch."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step
