"""Learning rates as a function of where the run is, so a resumed run continues exactly.

lr = base x warm-up x shape(progress) x plateau factor. `step`, `cosine` and `onecycle` depend only on
the epoch and the step, with the semantics of torch's StepLR, CosineAnnealingLR and OneCycleLR (a test
compares them); `plateau` keeps a small state (best validation loss, epochs without gain, current
factor) that goes into the checkpoint. What counts as a better loss is the one Monitor's rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from cnndsl.training.monitor import Monitor


@dataclass
class Plateau:
    best: float = math.inf
    bad_epochs: int = 0
    factor: float = 1.0


@dataclass
class Schedule:
    kind: str  # none | step | cosine | onecycle | plateau
    base_lr: float
    epochs: int
    steps_per_epoch: int
    warmup_epochs: int = 0
    step_size: int = 10
    plateau_patience: int = 3
    plateau: Plateau = None  # type: ignore[assignment]
    watch: Monitor = field(default_factory=Monitor)  # what plateau watches: val_loss, lower is better

    def __post_init__(self) -> None:
        if self.plateau is None:
            self.plateau = Plateau()

    def lr(self, epoch: int, step: int) -> float:
        """The learning rate for `step` (0-based) of `epoch` (1-based)."""
        done = (epoch - 1) * self.steps_per_epoch + step
        total = max(1, self.epochs * self.steps_per_epoch)
        t = min(1.0, done / total)
        warm = 1.0
        if self.warmup_epochs:
            warm = min(1.0, (done + 1) / (self.warmup_epochs * self.steps_per_epoch))
        shape = onecycle(done, total) if self.kind == "onecycle" else self._shape(epoch, t)
        return self.base_lr * warm * shape * self.plateau.factor

    def _shape(self, epoch: int, t: float) -> float:
        if self.kind == "step":  # torch's StepLR(step_size, gamma=0.1), stepped per epoch
            return 0.1 ** ((epoch - 1) // self.step_size)
        if self.kind == "cosine":  # torch's CosineAnnealingLR(T_max=all steps, eta_min=0), stepped per batch
            return 0.5 * (1 + math.cos(math.pi * t))
        return 1.0

    def end_epoch(self, value: float) -> str | None:
        """Updates the plateau state with the epoch's value of `watch`; says so when the rate drops."""
        if self.kind != "plateau":
            return None
        if self.watch.improved(value, self.plateau.best):
            self.plateau.best, self.plateau.bad_epochs = value, 0
            return None
        self.plateau.bad_epochs += 1
        if self.plateau.bad_epochs < self.plateau_patience:
            return None
        self.plateau.factor *= 0.1
        self.plateau.bad_epochs = 0
        return f"validation loss has not improved for {self.plateau_patience} epochs: learning rate x0.1"

    def state(self) -> dict:
        return asdict(self.plateau)

    def load(self, state: dict) -> None:
        self.plateau = Plateau(**state)


def _anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def onecycle(step: int, total: int, pct_start: float = 0.3, div: float = 25.0, final_div: float = 1e4) -> float:
    """torch's OneCycleLR (cosine annealing, two phases) as a factor of the peak rate at `step` of `total`:
    from 1/div up to 1 over the first 30% of the steps, then down to 1/div/final_div."""
    peak = pct_start * total - 1
    if step <= peak:
        return _anneal(1 / div, 1.0, step / peak)
    return _anneal(1.0, 1 / div / final_div, (step - peak) / (total - 1 - peak))
