"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2015; fastai's
`lr_find`): train a few steps at a rate that grows exponentially from 1e-7 to 10, one batch a step, watch the
smoothed loss, stop when it passes 4 times its best, and suggest a rate from the curve.

The suggestion is the rate where the smoothed loss falls fastest against log(rate) (fastai's `lr_steep`,
Smith's "the loss decreases most quickly"), before its minimum and past the sweep's first tenth (where the
average is still young). Not the minimum's rate / 10 (fastai's `lr_min`): the smoothing that makes the curve
readable (an average over about 50 steps) also makes it lag, so its minimum lies past where the loss of single
steps turns up; on the digits with the 혼공 CNN and Adam the minimum / 10 was 0.011, which left the network at
chance, and the steepest point 0.004 (tests/test_guardrails.py trains the suggestion to 97%). Both are drawn.

Each step is the training pass itself (training/epoch.py's train_pass on a one-batch split): the forward, the
loss, autocast, gradient clipping and DDP are the run's. The sweep trains on the run's network with an
optimizer of its own; the weights (batchnorm statistics included) and the random states are put back after
it, so the run then starts from the same initial weights as without the sweep.
"""

from __future__ import annotations

import copy
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnndsl.files import atomic_write

if TYPE_CHECKING:
    from cnndsl.training.setup import Run

START, END, STEPS = 1e-7, 10.0, 100  # fastai's lr_find defaults
BETA = 0.98  # the loss's exponential smoothing (fastai's)
DIVERGED = 4.0  # the sweep stops when the smoothed loss passes this many times its best
PNG = "lr_find.png"


@dataclass
class Sweep:
    """The rates tried, the loss at each (as trained, and smoothed), and what they suggest."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float  # the steepest point's rate (or the minimum's / 10 when the curve never falls)
    minimum: float  # the rate at the smoothed loss's minimum
    steepest: float  # the rate where the smoothed loss falls fastest (before the minimum)
    stopped: str  # why the sweep ended: "diverged", "not finite" or "done"

    def to_dict(self) -> dict:
        return {"suggestion": self.suggestion, "minimum": self.minimum, "steepest": self.steepest,
                "steps": len(self.lrs), "stopped": self.stopped}

    def line(self) -> str:
        return (f"lr-find: {len(self.lrs)} steps from {self.lrs[0]:.0e} to {self.lrs[-1]:.2g} ({self.stopped}); "
                f"smoothed loss lowest at {self.minimum:.2g}, steepest at {self.steepest:.2g}; "
                f"suggested lr {self.suggestion:.2g} ({self.rule})")

    @property
    def rule(self) -> str:
        return "the steepest descent" if self.suggestion == self.steepest else "the minimum's / 10: no descent"


def rate(step: int, steps: int, start: float = START, end: float = END) -> float:
    """The rate of `step` (0-based) of `steps`: exponential from `start` to `end`."""
    return start * (end / start) ** (step / max(1, steps - 1))


def sweep(run: Run, steps: int = STEPS, start: float = START, end: float = END) -> Sweep:
    """The range test on the run's network and training data; the weights and random states are unchanged after."""
    import torch

    model = run.net.model
    weights = copy.deepcopy(model.state_dict())
    device = run.data.val.y.device  # the model's (the training images may be held elsewhere)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            lrs, losses, stopped = _steps(run, steps, start, end)
    finally:
        model.load_state_dict(weights)
    smoothed = smooth(losses)
    return Sweep(lrs, losses, smoothed, *suggest(lrs, smoothed), stopped)


def _steps(run: Run, steps: int, start: float, end: float) -> tuple[list[float], list[float], str]:
    """Trains one batch a step at the growing rate, until `steps` or the loss diverges."""
    import torch

    from cnndsl.data.datasets import Split
    from cnndsl.training.epoch import Batches, NonFinite, train_pass
    from cnndsl.training.phases import make_optimizer, train_mode

    recipe, train, model = run.recipe, run.data.train, run.net.model
    optimizer = make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad], start)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(recipe.seed)).to(train.y.device)
    size = min(recipe.batch_size, len(train))
    train_mode(model, run.phases, recipe)
    lrs, losses, best, average = [], [], math.inf, 0.0
    for step in range(steps):
        lr = rate(step, steps, start, end)
        index = order[torch.arange(step * size, (step + 1) * size, device=order.device) % len(order)]
        batches = Batches(size, torch.Generator().manual_seed(step), lr=lambda _, lr=lr: lr, amp=amp(run),
                          clip=recipe.clip_grad_norm, world=run.world)
        try:
            loss, _ = train_pass(run.net.forward, Split(train.x[index], train.y[index]), batches, run.net.loss_fn,
                                 optimizer)
        except NonFinite:
            return lrs, losses, "not finite"
        lrs.append(lr)
        losses.append(loss)
        average = BETA * average + (1 - BETA) * loss
        smoothed = average / (1 - BETA ** (step + 1))
        if step > 0 and smoothed > DIVERGED * best:
            return lrs, losses, "diverged"
        best = min(best, smoothed)
    return lrs, losses, "done"


def amp(run: Run):
    """The run's mixed precision as the passes take it: the network's own setting where it has one (an Amp of
    training/accel.py), else the recipe's switch."""
    return getattr(run.net, "amp", run.recipe.amp)


def smooth(losses: list[float]) -> list[float]:
    """The exponential moving average of the losses, debiased (as fastai's recorder smooths them)."""
    out, average = [], 0.0
    for i, loss in enumerate(losses):
        average = BETA * average + (1 - BETA) * loss
        out.append(average / (1 - BETA ** (i + 1)))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float, float, float]:
    """(the suggestion, the minimum's rate, the steepest descent's rate): the steepest descent before the minimum,
    past the first tenth of the sweep; the minimum's rate / 10 when the loss never falls there."""
    if not lrs:
        return START, START, START
    low = min(range(len(smoothed)), key=smoothed.__getitem__)
    skip = len(lrs) // 10  # the young average's first steps: a slope of noise
    # the slope against log(rate) between neighbours, up to the minimum
    slopes = {i: (smoothed[i + 1] - smoothed[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(skip, low)}
    if not slopes or min(slopes.values()) >= 0:
        return lrs[low] / 10, lrs[low], lrs[low]
    steepest = min(slopes, key=slopes.__getitem__)
    return lrs[steepest], lrs[low], lrs[steepest]


def plot(result: Sweep, path: Path) -> None:
    """lr_find.png: the loss against the rate (log x), smoothed over the raw one, the suggestion marked."""
    from cnndsl import fonts
    from cnndsl.training.plots import DPI, _new_figure

    with fonts.pictures():
        fig = _new_figure(figsize=(7, 4))
        ax = fig.subplots()
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.9)
        ax.plot(result.lrs, result.losses, color="tab:blue", alpha=0.3, linewidth=1, label="loss of each step")
        ax.plot(result.lrs, result.smoothed, color="tab:blue", linewidth=2, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title("learning-rate range test")
        at = _loss_at(result, result.suggestion)
        ax.axvline(result.suggestion, color="tab:red", linestyle="--", linewidth=1.5)
        ax.plot([result.suggestion], [at], "o", color="tab:red", markersize=8,
                label=f"suggested {result.suggestion:.2g} ({result.rule})")
        ax.plot([result.minimum], [min(result.smoothed)], "v", color="tab:green", markersize=8,
                label=f"minimum {result.minimum:.2g}")
        top = min(max(result.smoothed), 2 * result.smoothed[0]) if result.smoothed else 1
        ax.set_ylim(min(result.smoothed) * 0.9 if result.smoothed else 0, top * 1.05)
        ax.legend(loc="upper left", fontsize=9)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    atomic_write(path, buffer.getvalue())


def _loss_at(result: Sweep, lr: float) -> float:
    """The smoothed loss at the rate nearest `lr` (the suggestion lies between the sweep's rates)."""
    nearest = min(range(len(result.lrs)), key=lambda i: abs(math.log(result.lrs[i] / lr)))
    return result.smoothed[nearest]
