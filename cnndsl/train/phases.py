"""Stages of training (`phases:`): each freezes some layers and starts a fresh optimizer and schedule.

A run without `phases:` is one phase of all its epochs. Only the phase's index is saved for resume: its
optimizer and schedule are rebuilt from the recipe and then loaded with their saved states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.errors import CnnError, did_you_mean
from cnndsl.train.recipe import Recipe
from cnndsl.train.schedule import Schedule


@dataclass
class Phases:
    plan: list[dict]  # {epochs, lr, freeze} each
    spec_frozen: frozenset = frozenset()  # parameters the spec itself marks frozen
    index: int = -1  # the phase the run is in; -1 before the first
    optimizer: object = None
    schedule: Schedule | None = None

    def of(self, epoch: int) -> int:
        """The phase that `epoch` (1-based) belongs to."""
        end = 0
        for i, phase in enumerate(self.plan):
            end += phase["epochs"]
            if epoch <= end:
                return i
        return len(self.plan) - 1

    def start(self, index: int) -> int:
        """The epoch before the phase's first."""
        return sum(p["epochs"] for p in self.plan[:index])


def plan_of(recipe: Recipe) -> list[dict]:
    return recipe.phases or [{"epochs": recipe.epochs, "lr": None, "freeze": []}]


def enter(phases: Phases, index: int, model, recipe: Recipe, steps_per_epoch: int, log) -> None:
    """Freezes what the phase says (and what the spec does), with a fresh optimizer and schedule."""
    phase = phases.plan[index]
    for name, param in model.named_parameters():
        frozen = name in phases.spec_frozen or any(_under(name, f) for f in phase["freeze"])
        param.requires_grad_(not frozen)
    lr = phase["lr"] or recipe.lr
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        where = (f"phase {index + 1} freezes {', '.join(phase['freeze'])}" if phase["freeze"]
                 else "the spec has none, or freezes them all")
        raise CnnError(f"nothing to train: no trainable parameters ({where})",
                       hint="add a layer with weights (conv, dense...), or freeze less")
    phases.optimizer = make_optimizer(recipe, trainable, lr)
    phases.schedule = Schedule(recipe.schedule, lr, phase["epochs"], steps_per_epoch, recipe.warmup_epochs,
                               recipe.step_size, recipe.plateau_patience)
    phases.index = index
    if len(phases.plan) > 1:
        frozen = ", ".join(phase["freeze"]) or "nothing"
        log(f"phase {index + 1}/{len(phases.plan)}: {phase['epochs']} epochs at lr {lr:g}, frozen: {frozen}")


def steps_per_epoch(train_size: int, processes: int, batch_size: int) -> int:
    return math.ceil(train_size / processes / batch_size)


def make_optimizer(recipe: Recipe, params, lr: float | None = None):
    import torch

    kind, lr = recipe.optimizer, lr or recipe.lr
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               weight_decay=recipe.weight_decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=recipe.weight_decay)


def check_phase_names(model, plan: list[dict]) -> None:
    """Each name a phase freezes is a layer with parameters, or an error with the nearest name."""
    names = [n for n, _ in model.named_parameters()]
    for phase in plan:
        for prefix in phase["freeze"]:
            if not any(_under(n, prefix) for n in names):
                tops = sorted({n.split(".")[0] for n in names})
                raise CnnError(f"phase freezes `{prefix}`, which names no layer with parameters",
                               hint=did_you_mean(prefix, tops) or f"top-level layers: {', '.join(tops)}")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")
