"""Stages of training (`phases:`): each freezes some layers and starts a fresh optimizer and schedule.

A run without `phases:` is one phase of all its epochs. Only the phase's index is saved for resume: its
optimizer and schedule are rebuilt from the recipe and then loaded with their saved states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.errors import CnnError, did_you_mean
from cnndsl.training.recipe import Recipe
from cnndsl.training.schedule import Schedule


@dataclass
class Phases:
    plan: list[dict]  # {epochs, lr, freeze} each
    spec_frozen: frozenset = frozenset()  # parameters the spec itself marks frozen
    index: int = -1  # the phase the run is in; -1 before the first
    optimizer: object = None
    schedule: Schedule | None = None
    frozen_batchnorm: list | None = None  # the phase's frozen batchnorm modules, kept in eval mode while training

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
    phases.frozen_batchnorm = frozen_batchnorm(model)
    if len(phases.plan) > 1 or len(trainable) < len(list(model.parameters())):
        counts = {True: 0, False: 0}
        for param in model.parameters():
            counts[param.requires_grad] += param.numel()
        names = f" ({', '.join(phase['freeze'])})" if phase["freeze"] else ""
        log(f"phase {index + 1}/{len(phases.plan)}: {phase['epochs']} epochs, lr {lr:g}, "
            f"trainable {counts[True]:,}, frozen {counts[False]:,}{names}")


def frozen_batchnorm(model) -> list:
    """Batchnorm modules whose parameters are all frozen (an affine-free one counts as frozen with its layer)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    frozen = []
    for name, module in model.named_modules():
        if not isinstance(module, _BatchNorm):
            continue
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            frozen.append(module)
        elif not params and _owner_frozen(model, name):
            frozen.append(module)
    return frozen


def _owner_frozen(model, name: str) -> bool:
    """The nearest enclosing module with parameters has them all frozen."""
    parts = name.split(".")
    for end in range(len(parts) - 1, -1, -1):
        params = list(model.get_submodule(".".join(parts[:end])).parameters())
        if params:
            return not any(p.requires_grad for p in params)
    return False


def train_mode(model, phases: Phases, recipe: Recipe) -> None:
    """model.train(), except that a frozen layer's batchnorm stays in inference mode, as Keras keeps it.

    Keras (TF 2.0 on) runs a layer with trainable=False in inference mode: its batchnorm normalises with its
    moving statistics and never updates them. PyTorch's train() would update them, which changes a frozen
    pretrained backbone; `frozen_batchnorm: train` asks for that.
    """
    model.train()
    if recipe.frozen_batchnorm == "inference":
        for module in phases.frozen_batchnorm or ():
            module.eval()


def steps_per_epoch(train_size: int, processes: int, batch_size: int) -> int:
    return math.ceil(train_size / processes / batch_size)


# `optimizer_defaults: keras`: Keras' values of the settings where its defaults differ from torch.optim's
# (docs/training.md has both); the learning rate, momentum and weight decay stay the recipe's own keys
KERAS_DEFAULTS = {
    "adam": {"eps": 1e-7}, "adamw": {"eps": 1e-7}, "nadam": {"eps": 1e-7}, "adamax": {"eps": 1e-7},
    "rmsprop": {"alpha": 0.9, "eps": 1e-7},  # Keras' rho is torch's alpha
    "adagrad": {"eps": 1e-7, "initial_accumulator_value": 0.1},
    "adadelta": {"rho": 0.95, "eps": 1e-7},
}


def make_optimizer(recipe: Recipe, params, lr: float | None = None):
    import torch

    kind, lr = recipe.optimizer, lr or recipe.lr
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               weight_decay=recipe.weight_decay)
    settings = KERAS_DEFAULTS[kind] if recipe.optimizer_defaults == "keras" else {}
    if kind == "rmsprop":
        settings = {**settings, "momentum": recipe.momentum}
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
           "nadam": torch.optim.NAdam, "adamax": torch.optim.Adamax, "adagrad": torch.optim.Adagrad,
           "adadelta": torch.optim.Adadelta}[kind]
    return cls(params, lr=lr, weight_decay=recipe.weight_decay, **settings)


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
