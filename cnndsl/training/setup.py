"""A training run's parts, made in the order the run needs them: checks, data, network, phases, steps.

Nothing is allocated before the memory check; the random-number streams are seeded before the data
and the weights are drawn, so the same seed gives the same run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl import memory
from cnndsl.build import initialize, scores, scores_module
from cnndsl.data.datasets import PRESETS, Dataset, given_dataset, load_dataset, normalize, normalize_with, preset
from cnndsl.errors import CnnError, printable
from cnndsl.saved import Checkpoint
from cnndsl.training import accel, distributed, steps
from cnndsl.training.phases import Phases, check_phase_names, enter, plan_of, steps_per_epoch
from cnndsl.training.recipe import Recipe


@dataclass
class Net:
    """The network and what the run calls it through."""

    model: object  # the nn.Module whose state_dict the checkpoints hold
    evaluate: Callable  # its scores (before a final softmax), for validation and test
    forward: Callable  # what training calls: the scores, wrapped for DDP and torch.compile when asked
    loss_fn: object
    amp: accel.Amp = field(default_factory=accel.Amp)  # mixed precision, and float16's gradient scaler


@dataclass
class Rngs:
    """The run's own random streams, saved in checkpoints so that a resumed run draws the same numbers."""

    shuffle: object  # each epoch's order of the training examples
    augment: object  # the augmentations (one stream per process)

    def state(self) -> dict:
        import torch

        return {"shuffle": self.shuffle.get_state(), "augment": self.augment.get_state(),
                "torch": torch.get_rng_state()}

    def load(self, state: dict) -> None:
        import torch

        self.shuffle.set_state(state["shuffle"])
        self.augment.set_state(state["augment"])
        torch.set_rng_state(state["torch"])


@dataclass
class Run:
    """Everything a training run holds while it goes."""

    recipe: Recipe
    spec: object  # the cnndsl.Spec trained
    input_shape: tuple
    out: Path
    world: distributed.World
    log: Callable[[str], None]
    data: Dataset  # its splits on the device
    net: Net
    rngs: Rngs
    phases: Phases
    steps: list[steps.EpochStep]
    history: list[dict] = field(default_factory=list)  # the epochs' rows
    stop: bool = False  # set by a step (early stopping) to end the run after this epoch
    callbacks: object = None  # the caller's own (training.callbacks.Callbacks), or None
    test_scores: list | None = None  # the tested weights' scores on the test set, by batch (made by loop.finish)

    def step(self, name: str) -> steps.EpochStep:
        return next(s for s in self.steps if s.name == name)

    def enter_phase(self, index: int, log: Callable[[str], None] | None = None) -> None:
        per_epoch = steps_per_epoch(len(self.data.train), self.world.size, self.recipe.batch_size)
        enter(self.phases, index, self.net.model, self.recipe, per_epoch, log or self.log)

    def checkpoint(self) -> Checkpoint:
        from cnndsl.training.resume import capture

        return capture(self)


def setup(spec, recipe: Recipe, out: Path, dev, here: distributed.World, log,
          epoch_steps: list[steps.EpochStep], given=None) -> Run:
    """Checks, then the data on the device, the network and the phases, for the run claiming `out` (runs.claim);
    `epoch_steps` are the run's (training.steps.standard and any the caller adds, checked already). `given` is
    data given in Python (data.arrays.Given), which replaces the recipe's dataset."""
    import torch

    report = spec.check()
    _check_crop(recipe, report.input)
    # refused before anything is allocated; processes on one CPU each hold the model and a batch
    need = memory.check_training(report, recipe.batch_size, dev, copies=1 if dev.type == "cuda" else here.size)
    accel.prepare(dev)
    seed_all(recipe.seed)
    data = load_data(recipe, report, dev, need, log, given)
    net = build_net(spec, recipe, dev, here, log)
    processes = f" x {here.size} processes" if here.size > 1 else ""
    log(f"training {report.analysis.graph.name} ({report.params:,} parameters) on {printable(recipe.data)}: "
        f"{len(data.train)} train, {len(data.val)} validation, {len(data.test)} test images; device {dev}{processes}")
    if recipe.tensorboard:
        log(printable(f"tensorboard: {out / 'tensorboard'} (watch it with `tensorboard --logdir {out.parent}`)"))
    plan = plan_of(recipe)
    check_phase_names(net.model, plan)
    spec_frozen = frozenset(n for n, p in net.model.named_parameters() if not p.requires_grad)
    rngs = Rngs(shuffle=torch.Generator().manual_seed(recipe.seed),
                augment=torch.Generator().manual_seed(recipe.seed + 1 + here.rank))
    return Run(recipe=recipe, spec=spec, input_shape=tuple(report.input), out=out, world=here, log=log, data=data,
               net=net, rngs=rngs, phases=Phases(plan, spec_frozen), steps=epoch_steps)


def load_data(recipe: Recipe, report, dev, need: memory.Need, log, given=None) -> Dataset:
    """The dataset (or the data `given` in Python) adapted to the input, normalised if asked, on the device
    (checked to fit there)."""
    import torch

    reserve = 0 if dev.type == "cuda" else need.total
    if given is None:
        data = load_dataset(recipe.data, report.input, recipe.seed, splits=recipe.splits, reserve=reserve)
    else:
        data = given_dataset(given, report.input, recipe.seed, recipe.splits, reserve)
    _check_classes(report.output, data.classes, recipe.data)
    held = dev if recipe.data_on_device else torch.device("cpu")  # where the training images live
    if dev.type == "cuda":
        _check_device_room(data, need, dev, held)
    if isinstance(recipe.normalize, str):  # a preset: the statistics the pretrained weights were trained with
        data.normalization = normalize_with(data, preset(recipe.normalize, data.train.x.shape[1]))
        data.notes.append(f"channels normalised with the {recipe.normalize} preset ({PRESETS[recipe.normalize]})")
    elif recipe.normalize:
        data.normalization = normalize(data)
        data.notes.append("channels normalised to mean 0 and deviation 1 with the training images' statistics")
    for note in data.notes:
        log(f"data: {printable(note)}")
    mismatch = preprocessing_mismatch(recipe)
    if mismatch:
        log(f"warning: {mismatch}")
    layout = torch.channels_last if recipe.channels_last and len(report.input) == 3 else torch.contiguous_format
    for split in (data.train, data.val, data.test):  # validation and test go to the device either way
        where = held if split is data.train else dev
        split.x, split.y = split.x.to(where, memory_format=layout), split.y.to(where)
        if where != dev and dev.type == "cuda":  # copied batch by batch, without waiting: from pinned memory
            split.x, split.y = split.x.pin_memory(), split.y.pin_memory()
    return data


def preprocessing_mismatch(recipe: Recipe) -> str | None:
    """Named pretrained weights were trained on normalised images: say so when the recipe normalises otherwise
    (torchvision's `weights.transforms()`, Keras' `preprocess_input`: the step tutorials warn not to forget)."""
    from cnndsl import pretrained

    if not pretrained.is_named(recipe.init):
        return None
    expected = pretrained.lookup(recipe.init).normalize
    same = recipe.normalize in PRESETS and preset(recipe.normalize, 3) == preset(expected, 3)
    if recipe.normalize == expected or same:  # inception and keras_xception are one scaling under two names
        return None
    now = f"`normalize: {str(recipe.normalize).lower()}`"
    return (f"{recipe.init}'s weights were trained on images normalised with the {expected} preset, and this run "
            f"has {now}: add `normalize: {expected}` to the recipe so that the "
            "weights see inputs like those they learned from")


def build_net(spec, recipe: Recipe, dev, here: distributed.World, log) -> Net:
    """The network on the device, its weights started as the recipe says, wrapped for DDP and compile."""
    import torch

    model = spec.build(channels_last=recipe.channels_last).to(dev)
    initialize(model, recipe.initializer)
    if recipe.init:
        from cnndsl import pretrained
        from cnndsl.keras_weights import is_keras_file
        from cnndsl.saved import read_weights
        from cnndsl.weights import load_weights

        source = pretrained.resolve(recipe.init)  # torchvision:NAME: the hub cache's file, downloaded if missing
        where = f"{recipe.init} ({source})" if source != recipe.init else recipe.init
        if not is_keras_file(source):  # a Keras file pairs with the module's layers, so it is read with them
            source, _ = read_weights(source)  # a checkpoint's fields checked, as every reader of one checks them
        log(f"init from {printable(where)}: " + load_weights(model, source, strict=False).summary())
    evaluate = forward = scores(model)
    if here.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(scores_module(model))
    if recipe.compile:
        accel.check_compile(dev)
        forward = torch.compile(forward)
    amp = accel.amp_for(recipe.amp, dev, warn=lambda line: log(f"warning: {line}"))
    return Net(model=model, evaluate=evaluate, forward=forward,
               loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing), amp=amp)


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _check_crop(recipe: Recipe, shape: tuple[int, ...]) -> None:
    """A crop pads each side by its value: more than the image's own size is a mistake (and memory)."""
    crop = recipe.augment.get("crop", 0)
    if len(shape) == 3 and crop > max(shape[1:]):
        raise CnnError(f"`augment.crop: {crop}` pads the {shape[1]}x{shape[2]} images by more than their size",
                       hint=f"use at most {max(shape[1:])}; 4 is usual for 32x32 images")


def _check_device_room(data, need: memory.Need, dev, held) -> None:
    """The data goes onto the GPU beside the model (the training split only where `held` is): all must fit in
    its free memory."""
    splits = (data.train, data.val, data.test) if held == dev else (data.val, data.test)
    images = sum(split.x.numel() * split.x.element_size() for split in splits)
    memory.ensure_fits(need.total + images, f"training on {dev} ({need.describe()}, and "
                       f"{memory.size(images)} of images)", "lower --batch-size, the input size or the layer "
                       "widths, or train on fewer images" + ("; or `data_on_device: false` to keep the training "
                       "images in host memory" if held == dev else ""), dev)


def _check_classes(output: tuple, classes: list[str], data: str) -> None:
    if len(output) != 1:
        raise CnnError(f"the network's output is {'x'.join(map(str, output))}, not one score per class",
                       hint="end the network with `flatten` or `globalavgpool` and `dense classes`")
    if output[0] != len(classes):
        raise CnnError(f"the network has {output[0]} outputs but {data} has {len(classes)} classes",
                       hint=f"--set classes={len(classes)} (if the network takes a `classes` parameter)")
