"""Guardrails before the long run: what is checked, cut and measured between a run's setup and its epoch 1.

- The preflight check: the untrained network's loss against ln(classes), the training labels' spread, the
  inputs' range after normalisation, and the network's last layer (a softmax or sigmoid before
  cross-entropy). Each finding says what to change; findings are warnings and the run goes on, except
  labels outside 0..C-1, with which no run can work (an error before training, with the fix).
- `overfit_batches: N` (Lightning's): the training split cut to N batches, validated on the same images.
- A fast dev run's cut: every split to one batch (training/devrun.py runs the rest).
- The learning-rate range test (training/lrfind.py) when asked, and `lr: auto` resolved to its suggestion.

What is found is printed now, and kept in the run's folder (preflight.json, lr_find.png) by the `preflight`
step at the first epoch's end, so a run that saves nothing leaves nothing; the run's page shows them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from cnndsl.errors import CnnError, printable
from cnndsl.files import atomic_write
from cnndsl.training import lrfind
from cnndsl.training.steps import Step

if TYPE_CHECKING:
    from cnndsl.training.setup import Run

FILE = "preflight.json"
SAMPLE = 4096  # training images the input statistics are measured on
LOSS_BATCHES = 4  # batches the initial loss is measured on
TOO_HIGH, TOO_LOW = 3.0, 0.5  # the initial loss against ln(classes) that makes a finding
IMBALANCE = 10.0  # the most to the fewest images of a class that makes a finding


@dataclass
class Guard:
    """What a run does before epoch 1 besides its setup (the caller's options, not the recipe's)."""

    preflight: bool = True  # the checks (the labels' range is checked even without: no run works outside it)
    find_lr: bool = False  # the range test, its plot kept; `lr: auto` runs it too
    batches: int = 0  # a fast dev run: every split cut to this many batches (0: whole)
    sweep_steps: int = lrfind.STEPS


@dataclass
class Finding:
    """Something likely wrong, and what to change."""

    check: str  # "loss", "labels", "input" or "last layer"
    message: str
    fix: str
    where: str = ""  # the spec's location, for the last layer
    level: str = "warning"  # or "note": right for this run, wrong elsewhere

    def lines(self) -> list[str]:
        where = f"{self.where}: " if self.where else ""
        return [f"preflight: {where}{self.level}: {self.message}", f"  fix: {self.fix}"]


@dataclass
class Checked:
    """What the checks before epoch 1 measured and found."""

    findings: list[Finding] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # loss, ln_classes, labels, input: what the summary line shows
    cut: str = ""  # how overfit_batches or a fast dev run cut the data
    sweep: lrfind.Sweep | None = None
    lr_auto: float | None = None  # the rate `lr: auto` became

    def to_dict(self) -> dict:
        return {"figures": self.figures, "findings": [f.__dict__ for f in self.findings], "cut": self.cut,
                "lr_find": self.sweep.to_dict() if self.sweep else None, "lr_auto": self.lr_auto}

    def notes(self) -> list[str]:
        """Lines for the run's summary."""
        lines = [self.cut] if self.cut else []
        lines += [f"{f.level}: {f.message}" for f in self.findings]
        if self.sweep:
            lines.append(self.sweep.line())
        return lines


class Preflight(Step):
    """The epoch-end step that keeps what was found before epoch 1: preflight.json and lr_find.png, written at
    the first epoch's end (nothing is kept by a run that saves no epoch). A resumed run finds them there."""

    name = "preflight"

    def __init__(self):
        self.checked: Checked | None = None
        self.written = False
        self.writes: tuple[str, ...] = ()

    def keep(self, checked: Checked) -> None:
        self.checked = checked
        self.writes = (FILE, lrfind.PNG) if checked.sweep else (FILE,)

    def on_epoch_end(self, row: dict, run: Run) -> None:
        if self.written or self.checked is None or not run.world.main:
            return
        atomic_write(run.out / FILE, json.dumps(self.checked.to_dict(), indent=2).encode())
        if self.checked.sweep:
            lrfind.plot(self.checked.sweep, run.out / lrfind.PNG)
        self.written = True


def prepare(run: Run, guard: Guard, resumed: bool, step: Preflight | None = None) -> Checked:
    """Between setup and epoch 1: the checks (on the whole data), the data cut, the range test; `step` keeps what
    they found. A resumed run only cuts its data again (its checks ran when it began, and its `lr` is a number by
    now)."""
    checked = Checked()
    if not resumed:  # on the whole data: a fast dev run's one batch would miss classes that are there
        check_labels(run)  # a run cannot work with labels out of range: refused with or without the checks
        if guard.preflight:
            checked.findings, checked.figures = preflight(run)
            for line in summary_lines(checked):
                run.log(line)
    checked.cut = cut(run, guard)
    if checked.cut:
        run.log(checked.cut)
    if resumed:
        return checked
    if guard.find_lr or run.recipe.lr == "auto":
        checked.sweep = lrfind.sweep(run, guard.sweep_steps)
        run.log(checked.sweep.line())
    if run.recipe.lr == "auto":
        checked.lr_auto = checked.sweep.suggestion
        run.recipe = replace(run.recipe, lr=checked.lr_auto)  # what the checkpoints and recipe.yaml record
        run.log(f"lr: auto -> {checked.lr_auto:.3g}, the range test's suggestion")
    if step is not None and (checked.figures or checked.sweep or checked.cut):
        step.keep(checked)
    return checked


def cut(run: Run, guard: Guard) -> str:
    """Cuts the data for `overfit_batches` or a fast dev run; says how (empty when it does not)."""
    from cnndsl.data.datasets import Split

    data, size = run.data, run.recipe.batch_size
    note = ""
    overfit = run.recipe.overfit_batches
    if overfit:
        n = min(len(data.train), overfit * size)
        data.train = Split(data.train.x[:n], data.train.y[:n])
        data.val = Split(data.train.x, data.train.y)
        note = (f"overfit_batches {overfit}: training on the same {n} images every epoch and validating on them "
                "(the test set is the usual one): a network that can learn reaches a training accuracy near 1")
    if guard.batches:
        n = guard.batches * size
        for name in ("train", "val", "test"):
            split = getattr(data, name)
            setattr(data, name, Split(split.x[:n], split.y[:n]))
        note = f"fast dev run: {guard.batches} batch of each split ({n} images at most)"
    return note


def check_labels(run: Run) -> None:
    """Labels outside 0..C-1 make CrossEntropyLoss fail (or index out of memory on a GPU): an error now."""
    classes = len(run.data.classes)
    for name in ("train", "val", "test"):
        y = getattr(run.data, name).y
        if len(y) == 0:
            continue
        low, high = int(y.min()), int(y.max())
        if low >= 0 and high < classes:
            continue
        if low == 1 and high == classes:
            hint = f"the labels run 1..{classes}: class numbers start at 0, so subtract 1 from every label"
        else:
            hint = f"labels are class numbers 0..{classes - 1}: leave out the others, or give the network more outputs"
        raise CnnError(f"the {name} labels run from {low} to {high}, but the network has {classes} outputs "
                       f"(classes 0..{classes - 1})", hint=hint)


def preflight(run: Run) -> tuple[list[Finding], dict]:
    """The findings of the checks, and the figures they measured."""
    loss, expected = initial_loss(run), math.log(max(2, len(run.data.classes)))
    counts = label_counts(run)
    stats = input_stats(run)
    figures = {"loss": loss, "ln_classes": expected, "labels": counts, "input": stats}
    findings = [*loss_findings(loss, expected, bool(run.recipe.init)), *label_findings(counts, run.data.classes),
                *input_findings(stats), *last_layer_findings(run.spec.graph)]
    return findings, figures


def summary_lines(checked: Checked) -> list[str]:
    """A few lines: the figures, then each finding and its fix."""
    f = checked.figures
    counts, stats = f["labels"], f["input"]
    present = [c for c in counts if c]
    line = (f"preflight: initial loss {f['loss']:.3f} (ln {len(counts)} = {f['ln_classes']:.3f}) · labels "
            f"{len(present)} of {len(counts)} classes, {min(present, default=0)} to {max(counts)} images each · "
            f"inputs {stats['min']:.3g}..{stats['max']:.3g}, mean {stats['mean']:.3g}, deviation {stats['std']:.3g}")
    lines = [line]
    for finding in checked.findings:
        lines += finding.lines()
    if not checked.findings:
        lines.append("preflight: nothing found (--no-preflight skips these checks)")
    return lines


def initial_loss(run: Run) -> float:
    """The untrained network's loss on the first training batches, in training mode (batchnorm's batch
    statistics, dropout), as epoch 1 starts; the weights (batchnorm's running statistics) and random states are
    put back after."""
    import copy

    import torch

    from cnndsl.data.datasets import Split
    from cnndsl.training.epoch import evaluate_pass
    from cnndsl.training.phases import train_mode

    model, train, size = run.net.model, run.data.train, run.recipe.batch_size
    n = min(len(train), LOSS_BATCHES * size)
    device = run.data.val.y.device  # the model's (the training images may be held elsewhere)
    weights = copy.deepcopy(model.state_dict())
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            train_mode(model, run.phases, run.recipe)
            first = Split(train.x[:n].to(device), train.y[:n].to(device))
            loss, _ = evaluate_pass(run.net.evaluate, first, size, run.net.loss_fn, lrfind.amp(run))
    finally:
        model.load_state_dict(weights)
    return loss


def label_counts(run: Run) -> list[int]:
    import torch

    return torch.bincount(run.data.train.y.cpu(), minlength=len(run.data.classes)).tolist()


def input_stats(run: Run) -> dict:
    """The training inputs' range, mean and deviation as the network sees them (after normalisation)."""
    x = run.data.train.x[:SAMPLE].float()
    return {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "std": float(x.std())}


def loss_findings(loss: float, expected: float, pretrained: bool) -> list[Finding]:
    if not math.isfinite(loss):
        return [Finding("loss", f"the untrained network's loss is {loss} on the first batches",
                        "the inputs or the weights hold NaN or infinity, or overflow: scale the inputs "
                        "(`normalize: true`) and check the data")]
    ratio = loss / expected
    if ratio > TOO_HIGH:
        return [Finding("loss", f"the untrained network's loss is {loss:.3g}, {ratio:.1f}x ln(classes) = "
                        f"{expected:.3g} (the loss of evenly spread scores): its scores start far too large",
                        "scale the inputs to about mean 0 and deviation 1 (`normalize: true`), or start with smaller "
                        "weights (`initializer`, batchnorm after the convolutions)")]
    if ratio < TOO_LOW and not pretrained:
        return [Finding("loss", f"the untrained network's loss is {loss:.3g}, well below ln(classes) = "
                        f"{expected:.3g}, before any training", "an untrained network cannot know the labels: check "
                        "that they are not nearly all one class, or that the scores do not see them")]
    return []


def label_findings(counts: list[int], classes: list[str]) -> list[Finding]:
    missing = [i for i, c in enumerate(counts) if c == 0]
    findings = []
    if missing == [0] and len(counts) > 2:
        findings.append(Finding("labels", "class 0 has no training images: the labels start at 1",
                                f"an off-by-one? subtract 1 from every label and give the network {len(counts) - 1} "
                                f"outputs (--set classes={len(counts) - 1})"))
    elif missing:
        names = ", ".join(printable(classes[i]) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        findings.append(Finding("labels", f"{len(missing)} of {len(counts)} classes have no training images "
                                f"({names}): the network can never predict them",
                                "check the labels and the split (a recipe's `splits`), or leave those classes out"))
    present = [(c, i) for i, c in enumerate(counts) if c]
    if len(present) > 1 and max(present)[0] > IMBALANCE * min(present)[0]:
        (low, i), (high, j) = min(present), max(present)
        findings.append(Finding("labels", f"the classes are imbalanced: {printable(classes[j])} has {high} training "
                                f"images, {printable(classes[i])} {low} ({high / low:.0f}x)",
                                "the accuracy flatters guessing the large classes: watch each class's recall (the "
                                "test table), and gather or repeat images of the small ones"))
    return findings


def input_findings(stats: dict) -> list[Finding]:
    low, high, mean, std = stats["min"], stats["max"], stats["mean"], stats["std"]
    seen = f"the inputs run from {low:.3g} to {high:.3g} (mean {mean:.3g}, deviation {std:.3g})"
    if low >= 0 and 10 < high <= 255.5:
        return [Finding("input", f"{seen}: pixel values 0..255, not scaled",
                        "divide the images by 255 (x / 255), or add `normalize: true` to the recipe")]
    if abs(mean) > 3 or std > 5:
        return [Finding("input", f"{seen}: far from mean 0 and deviation 1",
                        "add `normalize: true` to the recipe (each channel to mean 0, deviation 1)")]
    if std < 0.01:
        return [Finding("input", f"{seen}: nearly constant",
                        "the images may be blank, or scaled twice (divided by 255 twice?)")]
    return []


def last_layer_findings(graph) -> list[Finding]:
    """A softmax or sigmoid at the end of a network trained with cross-entropy, read from the spec's graph."""
    last = graph.layer(graph.output)
    where = str(last.span) if last.span else ""
    if last.op == "softmax" and not last.groups:  # the runner trains on the scores before it (build.scores)
        return [Finding("last layer", "the network ends in `softmax`, and CrossEntropyLoss applies log-softmax "
                        "itself: cnndsl trains on the scores before the softmax, so this run is right, and "
                        "model(x) gives probabilities",
                        "in a training loop of your own over the generated module, train on model.logits(x), or "
                        "remove the final softmax: CrossEntropyLoss applies log-softmax itself", where, "note")]
    if last.op == "softmax":
        return [Finding("last layer", f"the network ends in `softmax` (in {last.groups[-1]}): cross-entropy is "
                        "trained on probabilities, softmaxed twice, and learns slowly",
                        "remove the final softmax: CrossEntropyLoss applies log-softmax itself (a softmax at the "
                        "top level is skipped in training and kept for model(x))", where)]
    if last.op == "sigmoid":
        return [Finding("last layer", "the network ends in `sigmoid`: cross-entropy is trained on scores squeezed "
                        "into 0..1, which cannot separate the classes well",
                        "remove the final sigmoid: CrossEntropyLoss wants raw scores (logits)", where)]
    return []
